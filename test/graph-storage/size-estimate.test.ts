import { describe, expect, it } from "vitest";
import { jsonSize } from "../../src/persistence/size-estimate.js";
import type { JsonValue } from "../../src/graph/types.js";

describe("jsonSize (the baseline rule's size estimate)", () => {
  it("counts a wide integer held as a bigint by its digits, as the codecs write it", () => {
    const wide = 1747000000123456789n as unknown as JsonValue;
    expect(jsonSize(wide)).toBe("1747000000123456789".length);
    // Inside containers it weighs what a number printed with as many digits weighs.
    expect(jsonSize({ t: wide, a: [wide] } as JsonValue)).toBe(jsonSize({ t: 1747000000123456800, a: [1747000000123456800] }));
  });
});
