/**
 * What the tests of several handles appending to one append-log bucket at once share (file-array-engines,
 * append-segments-handles, append-segments-mixed-group, flush-group-expectations): a flush retried while another
 * handle takes its numbers (store-busy), and writers appending numbered entries at once, counting those whose flush
 * resolved (acknowledged: each must be stored, once).
 */
import type { AppendLogStorageTier } from "../../src/tier/types.js";

/** Flushes until one resolves: after `tries` rejections (store-busy: another handle took the numbers) the next one's error is thrown. */
export async function flushed(flush: () => Promise<unknown>, tries = 50): Promise<void> {
  for (let n = 0; ; n++) {
    try {
      await flush();
      return;
    } catch (err) {
      if (n === tries) throw err;
    }
  }
}

/** Each of `logs` stores the entry "warm" (its store opened before a race: the tests leave it out of what they count). */
export async function warmed(logs: ReadonlyArray<AppendLogStorageTier<string>>): Promise<void> {
  for (const log of logs) {
    log.appendEntries(["warm"]);
    await flushed(() => log.flush());
  }
}

/** Appends `entry` to `log` and flushes: whether the flush resolved (a rejected one leaves the entry pending). */
export async function appendFlushed(log: AppendLogStorageTier<string>, entry: string): Promise<boolean> {
  log.appendEntries([entry]);
  try {
    await log.flush();
    return true;
  } catch {
    return false; // store-busy or a busy store: the entry stays pending and the writer's settle writes it
  }
}

/**
 * Writer w of `writers` (all at once) appends `w<w>-0` .. `w<w>-<n - 1>` by `append` (true: its flush resolved), then
 * `settle` writes what its rejected flushes left pending. The acknowledged entries, in the order acknowledged.
 */
export async function acknowledgedAppends<W>(
  writers: readonly W[],
  n: number,
  append: (writer: W, entry: string, w: number, i: number) => Promise<boolean>,
  settle: (writer: W) => Promise<void>,
): Promise<string[]> {
  const acked: string[] = [];
  await Promise.all(
    writers.map(async (writer, w) => {
      for (let i = 0; i < n; i++) {
        const entry = `w${w}-${i}`;
        if (await append(writer, entry, w, i)) acked.push(entry);
      }
      await settle(writer);
    }),
  );
  return acked;
}
