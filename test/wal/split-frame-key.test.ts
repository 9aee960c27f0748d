/** splitWalFrameKey: the one reader of "which graph does this WAL key belong to" (src/wal/keys.ts). */
import { describe, expect, it } from "vitest";
import { splitWalFrameKey, walFrameKey, graphWalPrefix } from "../../src/wal/keys.js";

describe("splitWalFrameKey", () => {
  it("returns the graph and seq of every key walFrameKey makes, whatever the graph name", () => {
    for (const graphName of ["g", "", "a/wal/b", "line\nbreak", "😀", "g/wal"]) {
      for (const seq of [0, 7, Number.MAX_SAFE_INTEGER]) {
        expect(splitWalFrameKey(walFrameKey(graphWalPrefix(graphName), seq))).toEqual({ graphName, seq });
      }
    }
  });

  it("is undefined for keys that are not frame keys", () => {
    for (const key of ["g", "g/wal", "g/wal/", "g/wal/1", "g/walrus/00000000000000000001", "g/wal/0000000000000000000x", "g/wal/000000000000000000001", "g/wal/99999999999999999999"]) {
      expect(splitWalFrameKey(key), key).toBeUndefined();
    }
  });
});
