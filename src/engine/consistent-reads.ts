/**
 * Point-in-time reads through the engine (BaseStorageTier.readConsistent on a read-only store's tiers): the store's
 * actor holds its backend's `readConsistent` open from a tier's "begin" to the matching "end", so every read the
 * actor makes meanwhile, for any tier of the store, sees one point in time; begins that overlap share it. Each
 * begin gets a token its end hands back: an actor that replaced a lost one (crashed, restarted) does not know the
 * token, so the end says the point in time was lost, and never ends another caller's. A token belongs to the tier
 * that began it: closing that tier ends it (its caller can no longer send the end through it), so a reader that
 * closed its tiers inside readConsistent never holds the store's point in time for the actor's lifetime.
 */
import { randomUUID } from "node:crypto";
import type { StorageBackend } from "../backend/types.js";
import { StorageError } from "../errors.js";

export class ConsistentReads {
  /** Each held token and the tier that began it. */
  private readonly holders = new Map<string, number>();
  /** Lets the backend's readConsistent return: ends the held transaction. */
  private release: (() => void) | undefined;
  /** Settles when the backend's readConsistent returned (its transaction ended). */
  private ended: Promise<unknown> | undefined;

  /** Resolves, with the token for `end`, once the backend runs this actor's reads at one point in time. */
  async begin(backend: StorageBackend, tier: number): Promise<string> {
    const consistent = backend.readOnly === true ? backend.readConsistent?.bind(backend) : undefined;
    if (consistent === undefined) {
      throw new StorageError("invalid-argument", `${backend.name}: readConsistent is for read-only SQLite and PostgreSQL stores`);
    }
    const token = randomUUID();
    const first = this.holders.size === 0;
    this.holders.set(token, tier);
    if (!first) return token;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const held = new Promise<void>((resolve) => (this.release = resolve));
    const ended = consistent(() => {
      entered();
      return held;
    });
    this.ended = ended;
    try {
      // The backend may fail before it runs the held call (a closed handle): then nothing is held.
      await Promise.race([inside, ended]);
      return token;
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The end of the begin that gave `token`: false when this actor never held it (the one that did was lost). */
  async end(token: string): Promise<boolean> {
    if (!this.holders.delete(token)) return false;
    if (this.holders.size > 0) return true;
    const ended = this.ended;
    this.close();
    await ended?.catch(() => undefined); // read-only: an end that fails loses nothing
    return true;
  }

  /** `tier` closed: the points in time it began end (their ends can no longer come through it). */
  endTier(tier: number): void {
    for (const [token, owner] of this.holders) if (owner === tier) void this.end(token);
  }

  /** The actor shuts down (or the begin failed): whatever is held ends now. */
  close(): void {
    this.holders.clear();
    this.release?.();
    this.release = undefined;
    this.ended = undefined;
  }
}
