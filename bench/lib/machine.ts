/** Machine facts, package versions and the git revision recorded with every run (figures mean little without them). */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statfsSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MAIN_CPU_SOURCE } from "./meter.js";

/** The package root: the nearest folder above this file whose package.json is ours (works from src and dist). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "graphrefly-storage") {
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("bench: cannot find the graphrefly-storage package root above " + import.meta.url);
    dir = up;
  }
}

/** Magic numbers of the file systems a temp dir commonly lives on: fsync costs differ wildly between them. */
const FS_TYPES: Readonly<Record<number, string>> = {
  0xef53: "ext2/3/4",
  0x01021994: "tmpfs",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x794c7630: "overlayfs",
  0x65735546: "fuse",
};

export interface MachineFacts {
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
  readonly kernel: string;
  readonly cpuModel: string;
  readonly cpus: number;
  readonly availableParallelism: number;
  readonly totalMemMb: number;
  readonly tmpdir: string;
  readonly tmpdirFs: string;
  readonly mainThreadCpuSource: string;
  /** 1/5/15-minute load averages when the run started: other processes on the machine skew every figure. */
  readonly loadAvg: readonly number[];
}

export function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  let tmpdirFs = "unknown";
  try {
    const type = statfsSync(os.tmpdir()).type;
    tmpdirFs = FS_TYPES[type] ?? `0x${type.toString(16)}`;
  } catch {
    // statfs is not available everywhere; the figure is informative only
  }
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    kernel: os.release(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    totalMemMb: Math.round(os.totalmem() / 2 ** 20),
    tmpdir: os.tmpdir(),
    tmpdirFs,
    mainThreadCpuSource: MAIN_CPU_SOURCE ?? "unavailable (event-loop utilisation only)",
    loadAvg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

const PACKAGES = ["better-sqlite3", "lmdb", "classic-level", "tinybench", "piscina", "comlink", "canonicalize", "typescript"];

/** Installed versions (from node_modules, not the ranges in package.json). */
export function packageVersions(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const own = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name: string; version: string };
  out[own.name] = own.version;
  for (const name of PACKAGES) {
    try {
      out[name] = (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      out[name] = "not installed";
    }
  }
  return out;
}

export function gitRevision(root: string): { commit: string; dirty: boolean } | undefined {
  try {
    const commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const status = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return undefined;
  }
}
