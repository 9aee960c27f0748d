/**
 * The actor's side of write holding (docs/design.md §3.24): counts the messages its port delivered and publishes the
 * count in the shared `taken` counter once the actor is through with them, i.e. after the event-loop turn that took
 * them and the following one, where group commit (group-commit.ts) writes what they triggered. While the count
 * trails what the main thread posted, the actor is busy and the main thread holds further writes instead of posting
 * one message per turn.
 */
import { ActorCounters } from "./actor-counters.js";

export class MessagesTaken {
  readonly #counters: ActorCounters | undefined;
  #received = 0;
  #publishing = false;

  constructor(buffer: SharedArrayBuffer | undefined) {
    this.#counters = buffer === undefined ? undefined : new ActorCounters(buffer);
  }

  /** Call for each protocol message the port delivered. */
  took(): void {
    this.#received++;
    if (this.#publishing || this.#counters === undefined) return;
    this.#publishing = true;
    // Two turns: the commit group commit defers to the end of this turn runs in a callback queued before ours.
    setImmediate(() =>
      setImmediate(() => {
        this.#publishing = false;
        this.#counters!.set("taken", this.#received);
      }),
    );
  }
}
