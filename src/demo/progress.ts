/**
 * The live progress line: redrawn in place on a terminal (cli-progress), one plain line per second when the
 * output is piped (logs, CI, the demo test).
 */
import cliProgress from "cli-progress";

export interface ProgressSample {
  elapsedMs: number;
  changes: number;
  durableSeq: number;
  flushP99Ms: number | undefined;
  loopP99Ms: number;
  compactions: number;
}

export interface Progress {
  stop(): Promise<void>;
}

/** Samples `sample()` periodically until `stop()`; `totalMs` sizes the bar. */
export function startProgress(totalMs: number, tty: boolean, sample: () => Promise<ProgressSample>): Progress {
  const everyMs = tty ? 250 : 1000;
  let last = { at: 0, changes: 0 };
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format:
            " {bar} {elapsed}s | {rate} changes/s | durable seq {seq} | flush p99 {flush} | event-loop p99 {loop} | compactions {compactions}",
          hideCursor: true,
          barsize: 20,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(totalMs, 0, payload(undefined, 0));
  let busy: Promise<void> = Promise.resolve();
  const tick = (): void => {
    busy = sample().then((s) => {
      const rate = ((s.changes - last.changes) * 1000) / Math.max(1, s.elapsedMs - last.at);
      last = { at: s.elapsedMs, changes: s.changes };
      if (bar) bar.update(Math.min(totalMs, s.elapsedMs), payload(s, rate));
      else {
        const p = payload(s, rate);
        console.log(
          `  [${p.elapsed}s] ${p.rate} changes/s | durable seq ${p.seq} | flush p99 ${p.flush} | event-loop p99 ${p.loop} | compactions ${p.compactions}`,
        );
      }
    }, () => undefined);
  };
  const timer = setInterval(tick, everyMs);
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      await busy;
      tick();
      await busy;
      bar?.stop();
    },
  };
}

function payload(s: ProgressSample | undefined, rate: number): Record<string, string> {
  return {
    elapsed: ((s?.elapsedMs ?? 0) / 1000).toFixed(1).padStart(4),
    rate: formatInt(rate).padStart(9),
    seq: formatInt(s?.durableSeq ?? 0).padStart(9),
    flush: formatMs(s?.flushP99Ms),
    loop: formatMs(s?.loopP99Ms),
    compactions: String(s?.compactions ?? 0),
  };
}

export function formatInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function formatMs(ms: number | undefined): string {
  return ms === undefined ? "n/a" : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}
