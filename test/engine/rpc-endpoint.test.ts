/**
 * comlink never sees the writes batch (src/engine/rpc.ts portEndpoint): its `expose` copies each message's own
 * properties into a fresh object before reading its type, and the batch is one flat array, so every element was
 * copied on the actor's thread for nothing (a 50,000-put burst took the worker twice as long).
 */
import { MessageChannel } from "node:worker_threads";
import { expose, wrap } from "comlink";
import { describe, expect, it } from "vitest";
import { portEndpoint, useTypedErrors } from "../../src/engine/rpc.js";
import { isWritesMessage, packWrites, unpackWrites, type Op } from "../../src/engine/protocol.js";

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

describe("the actor's comlink endpoint", () => {
  it("hands comlink object messages only; array messages (writes batches) reach the port's other listeners alone", async () => {
    const { port1, port2 } = new MessageChannel();
    const endpoint = portEndpoint(port2);
    const seenByComlink: unknown[] = [];
    const seenByEntry: unknown[] = [];
    const listener = (ev: MessageEvent): void => void seenByComlink.push(ev.data);
    endpoint.addEventListener("message", listener as Parameters<typeof endpoint.addEventListener>[1]);
    port2.on("message", (m: unknown) => seenByEntry.push(m));
    endpoint.start?.();
    try {
      const ops: Op[] = [{ t: "puts", tier: 0, keys: ["k"], values: [{ v: 1 }], w: 10, n: 1 }];
      port1.postMessage(packWrites(ops));
      port1.postMessage({ type: "GET", id: "1", path: [] });
      await nextTurn();
      expect(seenByComlink).toEqual([{ type: "GET", id: "1", path: [] }]);
      expect(seenByEntry).toHaveLength(2);
      expect(isWritesMessage(seenByEntry[0])).toBe(true);
      expect(unpackWrites(seenByEntry[0] as Parameters<typeof unpackWrites>[0])).toEqual(ops);

      endpoint.removeEventListener("message", listener as Parameters<typeof endpoint.addEventListener>[1]);
      port1.postMessage({ type: "GET", id: "2", path: [] });
      await nextTurn();
      expect(seenByComlink).toHaveLength(1);
      expect(seenByEntry).toHaveLength(3);
    } finally {
      port1.close();
    }
  });

  it("comlink calls keep working on a port that also carries writes batches", async () => {
    useTypedErrors();
    const { port1, port2 } = new MessageChannel();
    const received: Op[][] = [];
    expose({ echo: (x: number) => x * 2 }, portEndpoint(port2));
    port2.on("message", (m: unknown) => {
      if (isWritesMessage(m)) received.push(unpackWrites(m));
    });
    const remote = wrap<{ echo(x: number): Promise<number> }>(portEndpoint(port1));
    try {
      const ops: Op[] = [{ t: "puts", tier: 1, keys: ["a", "b"], values: ["x", "y"], w: 4, n: 2 }];
      port1.postMessage(packWrites(ops));
      expect(await remote.echo(21)).toBe(42);
      expect(received).toEqual([ops]);
    } finally {
      port1.close();
    }
  });
});
