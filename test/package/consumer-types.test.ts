/**
 * A strict TypeScript user of the package as npm ships it: the files `npm pack` lists, in a scratch project's
 * node_modules beside the package's dependencies. Its declarations must compile with `--strict` and full library
 * checking (skipLibCheck off) under each module resolution a Node ESM project uses, every runtime export must be
 * typed, and no `any` may reach a user through the public surface (an `any` that is a library type's own default
 * argument, like AsyncIterable's TReturn, is the library's). Needs dist/ (built by `npm test`'s pretest).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as api from "../../src/index.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "grf-consumer-"));
const pkgDir = join(scratch, "node_modules", "graphrefly-storage");
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

beforeAll(() => {
  // --ignore-scripts: dist/ is already built; packing must not rebuild it in the middle of a run.
  const listed = (JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPO, encoding: "utf8" })) as Array<{
    files: Array<{ path: string }>;
  }>)[0]!.files.map((f) => f.path);
  for (const path of listed) {
    mkdirSync(dirname(join(pkgDir, path)), { recursive: true });
    cpSync(join(REPO, path), join(pkgDir, path));
  }
  for (const entry of readdirSync(join(REPO, "node_modules"))) {
    if (!entry.startsWith(".")) symlinkSync(join(REPO, "node_modules", entry), join(scratch, "node_modules", entry));
  }
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true }));
  writeFileSync(join(scratch, "consumer.ts"), CONSUMER);
}, 60_000);

/** Uses the main entry points the way the docs do, with explicit types where a user would write them. */
const CONSUMER = `
import {
  openStorageEngine, createGraph, attachSnapshotStorage, restoreSnapshot, followGraph, compactGraphInEngine,
  walFrameCodec, jsonCodecFor, kvStorage, memoryBackend, sqliteKv, sqliteSnapshot, StorageError, RestoreError, CodecError,
  type StoreSpec, type KvStorageTier, type SnapshotStorageTier, type GraphCheckpointRecord, type WALFrame,
  type StorageHandle, type RestoreResult, type GraphFollower, type CompactionResult, type StoreStats, type JsonValue,
  type StorageErrorCode, type ReactiveGraph, type Codec,
} from "graphrefly-storage";

function buildAppGraph(): ReactiveGraph {
  const graph = createGraph("app");
  graph.state("count", 0);
  graph.derived("double", ["count"], (c) => (c as number) * 2);
  return graph;
}

export async function main(): Promise<void> {
  const store: StoreSpec = { kind: "sqlite", path: "./data/app.db" };
  const engine = openStorageEngine({ threads: 1, onError: (err, { store: s }) => console.error(err.message, s.kind) });
  const snapshot: SnapshotStorageTier<GraphCheckpointRecord> = engine.snapshot<GraphCheckpointRecord>(store);
  const wal: KvStorageTier<WALFrame> = engine.kv(store, { codec: walFrameCodec });
  const graph = buildAppGraph();
  try {
    const restored: RestoreResult = await restoreSnapshot(graph, { snapshot, wal });
    console.log(restored.finalSeq);
  } catch (err) {
    if (!(err instanceof RestoreError && err.code === "baseline-missing")) throw err;
  }
  const handle: StorageHandle = attachSnapshotStorage(graph, [{ snapshot, wal }]);
  graph.set("count", 1);
  const seq: number = await handle.flush();
  const stats: StoreStats[] = await engine.stats();
  const compacted: CompactionResult = await compactGraphInEngine(engine, store, "app", { keepFrames: 10 });
  console.log(seq, stats[0]?.flushes, compacted.baselineSeq);
  const settings = engine.kv<JsonValue>(store);
  try {
    settings.save("theme", { dark: true });
  } catch (err) {
    if (err instanceof CodecError) console.error(err.code, err.details.path);
  }
  const theme: JsonValue | undefined = await settings.load("theme");
  console.log(theme);
  await handle.dispose();
  await engine.close();

  const follower: GraphFollower = await followGraph(buildAppGraph(), {
    snapshot: sqliteSnapshot("./data/app.db", { readOnly: true }),
    wal: sqliteKv("./data/app.db", { readOnly: true, codec: walFrameCodec }),
  }, { pollMs: 100, onError: (err, fatal) => console.error(fatal, err.message) });
  console.log(follower.lag().appliedSeq);
  await follower.stop();

  const codec: Codec<{ x: number }> = jsonCodecFor<{ x: number }>();
  const kv: KvStorageTier<{ x: number }> = kvStorage(memoryBackend(), { codec });
  try {
    kv.save("p", { x: 1 });
  } catch (err) {
    const code: StorageErrorCode | undefined = err instanceof StorageError ? err.code : undefined;
    if (code === "backpressure" && kv.drained) await kv.drained();
  }
  for await (const { key, value } of kv.listByPrefix("")) console.log(key, value.x);
}
`;

function compile(options: ts.CompilerOptions): string[] {
  const base: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: false, target: ts.ScriptTarget.ES2022, types: ["node"], typeRoots: [join(scratch, "node_modules/@types")] };
  const program = ts.createProgram([join(scratch, "consumer.ts")], { ...base, ...options });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName.replace(scratch, "").replace(REPO, "")}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : "";
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}

describe("a strict TypeScript consumer of the packed package", () => {
  const settings: Record<string, ts.CompilerOptions> = {
    nodenext: { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext },
    node16: { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 },
    bundler: { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler },
  };
  for (const [name, options] of Object.entries(settings)) {
    it(`compiles with --strict and skipLibCheck off (module resolution ${name})`, () => {
      expect(compile(options)).toEqual([]);
    }, 60_000);
  }

  it("gets a type for every runtime export, and no any through the public surface", () => {
    const entry = join(pkgDir, "dist/src/index.d.ts");
    const program = ts.createProgram([entry], { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022 });
    const checker = program.getTypeChecker();
    const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
    const exported = checker.getExportsOfModule(moduleSymbol);
    const valueNames = exported.filter((s) => (checker.getAliasedSymbol(s).flags & ts.SymbolFlags.Value) !== 0).map((s) => s.name);
    expect(valueNames.sort()).toEqual(Object.keys(api).sort());

    const ours = (decl: ts.Declaration | undefined): boolean => decl === undefined || decl.getSourceFile().fileName.startsWith(pkgDir);
    const seen = new Set<ts.Type>();
    const found: string[] = [];
    const visit = (type: ts.Type, where: string, depth: number): void => {
      if ((type.flags & ts.TypeFlags.Any) !== 0) {
        found.push(where);
        return;
      }
      if (depth > 8 || seen.has(type)) return;
      seen.add(type);
      if (type.isUnionOrIntersection()) {
        type.types.forEach((t) => visit(t, where, depth + 1));
        return;
      }
      const symbol = type.aliasSymbol ?? type.getSymbol();
      const reference = (type as ts.TypeReference).target !== undefined ? (type as ts.TypeReference) : undefined;
      if (!ours(symbol?.declarations?.[0])) {
        // A library's type: only the arguments we give it are ours (not its own `= any` defaults).
        const params = reference?.target.typeParameters ?? [];
        (reference ? checker.getTypeArguments(reference) : []).forEach((arg, i) => {
          const fallback = params[i]?.getDefault();
          if ((arg.flags & ts.TypeFlags.Any) !== 0 && fallback !== undefined && (fallback.flags & ts.TypeFlags.Any) !== 0) return;
          visit(arg, `${where}<${i}>`, depth + 1);
        });
        return;
      }
      for (const signature of [...type.getCallSignatures(), ...type.getConstructSignatures()]) {
        for (const p of signature.getParameters()) visit(checker.getTypeOfSymbol(p), `${where}(${p.name})`, depth + 1);
        visit(signature.getReturnType(), `${where}()`, depth + 1);
      }
      for (const p of type.getProperties()) {
        if (ours(p.declarations?.[0])) visit(checker.getTypeOfSymbol(p), `${where}.${p.name}`, depth + 1);
      }
      if (reference) checker.getTypeArguments(reference).forEach((arg, i) => visit(arg, `${where}<${i}>`, depth + 1));
    };
    for (const s of exported) {
      const target = checker.getAliasedSymbol(s);
      if ((target.flags & ts.SymbolFlags.Value) !== 0) visit(checker.getTypeOfSymbol(target), s.name, 0);
      if ((target.flags & ts.SymbolFlags.Type) !== 0) visit(checker.getDeclaredTypeOfSymbol(target), `type ${s.name}`, 0);
    }
    expect(seen.size).toBeGreaterThan(200);
    expect(found).toEqual([]);
  }, 60_000);
});
