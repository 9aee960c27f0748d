// Worker entry for crash drills (tests only; the package's entry is workers/store-actor.ts): the store actor as in
// production, plus faults a test posts on the actor's port (see faults.ts). Loaded by piscina as plain ESM, so it
// imports the compiled entry: run `npm run build` first.
import hostActor from "../../dist/workers/store-actor.js";
import { FAULT_MESSAGE } from "./fault-messages.mjs";

export default function hostActorWithFaults(task) {
  task.port.on("message", (m) => {
    if (typeof m === "object" && m !== null && m.type === FAULT_MESSAGE) fault(m.kind);
  });
  return hostActor(task);
}

function fault(kind) {
  switch (kind) {
    case "throw": // an uncaught exception ends the worker
      setImmediate(() => {
        throw new Error("injected fault: uncaught exception in store actor");
      });
      return;
    case "exit":
      setImmediate(() => process.exit(70));
      return;
    case "oom": {
      // Grows until the worker's resourceLimits end it.
      const hog = [];
      const grow = () => {
        for (let i = 0; i < 1e5; i++) hog.push({ i, pad: "x".repeat(64) });
        setImmediate(grow);
      };
      setImmediate(grow);
      return;
    }
    case "hang": {
      // The thread stops answering for 60 s (tests terminate it or let the watchdog do so).
      const until = Date.now() + 60_000;
      while (Date.now() < until) {
        // busy loop
      }
      return;
    }
    default:
      throw new TypeError(`unknown fault kind ${String(kind)}`);
  }
}
