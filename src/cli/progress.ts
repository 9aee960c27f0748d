/**
 * Progress bars for long operations: drawn on stderr only when stderr is a terminal, so piped or redirected
 * runs stay quiet and stdout stays clean for data (frames, export).
 */
import cliProgress from "cli-progress";

export interface Progress {
  /** Starts (or restarts) a bar for `total` steps under `label`. */
  start(label: string, total: number): void;
  advance(steps?: number): void;
  stop(): void;
}

const SILENT: Progress = Object.freeze({ start() {}, advance() {}, stop() {} });

/** A bar on stderr when it is a TTY and `enabled` (the `--no-progress` flag turns it off); else a no-op. */
export function createProgress(enabled: boolean): Progress {
  if (!enabled || process.stderr.isTTY !== true) return SILENT;
  let bar: cliProgress.SingleBar | undefined;
  return {
    start(label, total) {
      bar?.stop();
      bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${label} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}`,
          clearOnComplete: true,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
    },
    advance(steps = 1) {
      bar?.increment(steps);
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
