/** Codecs a worker can run itself: the built-ins by name, or a module the worker imports. */
import { jsonCodec } from "../codec/json.js";
import { bigintJsonCodec } from "../codec/bigint.js";
import type { Codec, ColumnarTransport } from "../codec/types.js";
import { walFrameCodec } from "../wal/codec.js";
import type { CodecSpec } from "./protocol.js";

const builtins = new Map<string, Codec<unknown>>([
  [jsonCodec.name, jsonCodec as Codec<unknown>],
  [bigintJsonCodec.name, bigintJsonCodec as Codec<unknown>],
  [walFrameCodec.name, walFrameCodec as unknown as Codec<unknown>],
]);

/** Module codec reference: the worker imports `specifier` and uses its `export` (default "default"). */
export interface CodecModuleRef {
  readonly module: string;
  readonly export?: string;
}

/** Maps a proxy's codec option to what crosses the thread boundary. */
export function codecSpecOf(codec: Codec<never> | CodecModuleRef | undefined): CodecSpec {
  if (codec === undefined) return { kind: "builtin", name: jsonCodec.name };
  if ("module" in codec) return { kind: "module", specifier: codec.module, exportName: codec.export ?? "default" };
  const builtin = builtins.get(codec.name);
  return builtin === (codec as unknown) ? { kind: "builtin", name: codec.name } : { kind: "main" };
}

/** Resolves a spec inside the worker; undefined = values arrive pre-encoded. */
export async function resolveCodec(spec: CodecSpec): Promise<Codec<unknown> | undefined> {
  switch (spec.kind) {
    case "main":
      return undefined;
    case "builtin": {
      const c = builtins.get(spec.name);
      if (!c) throw new TypeError(`unknown built-in codec "${spec.name}"`);
      return c;
    }
    case "module": {
      let mod: Record<string, unknown>;
      try {
        mod = (await import(spec.specifier)) as Record<string, unknown>;
      } catch (err) {
        // Node's own error names where resolution looked (the library's files), not which tier option was wrong.
        const why = err instanceof Error ? err.message : String(err);
        throw new TypeError(`codec module "${spec.specifier}" could not be imported in the store's worker: ${why}`, { cause: err });
      }
      const c = mod[spec.exportName] as Partial<Codec<unknown>> | undefined;
      if (!c || typeof c.encode !== "function" || typeof c.decode !== "function" || !transportOrNone(c.columns)) {
        throw new TypeError(`module "${spec.specifier}" export "${spec.exportName}" is not a codec`);
      }
      return c as Codec<unknown>;
    }
  }
}

function transportOrNone(t: Partial<ColumnarTransport<unknown>> | undefined): boolean {
  return (
    t === undefined ||
    (typeof t.empty === "function" && typeof t.push === "function" && typeof t.at === "function" && (t.encoder === undefined || typeof t.encoder === "function"))
  );
}

/**
 * Calls `found` with the columnar transport of the codec the worker runs for `spec`, found as the worker finds that
 * codec, so the columns filled here are the ones its `at` reads: at once for a built-in, once the module is
 * imported here too for a module codec. Never for a main-thread codec (its values cross as bytes).
 */
export function findColumns(spec: CodecSpec, found: (columns: ColumnarTransport<unknown>) => void): void {
  if (spec.kind === "builtin") {
    const columns = builtins.get(spec.name)?.columns;
    if (columns !== undefined) found(columns);
  } else if (spec.kind === "module") {
    resolveCodec(spec).then(
      (c) => c?.columns !== undefined && found(c.columns),
      () => undefined, // values travel whole; a module the worker cannot load either fails the tier's open there
    );
  }
}
