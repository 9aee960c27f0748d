/**
 * Garbage collection on demand for tests that prove something is (or is not) kept alive: V8's gc(), exposed at run
 * time so the tests need no --expose-gc flag, and a wait until a weakly held object is gone.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Collects until `ref`'s target is gone (a dropped handle's timers and settling promises may hold it a few turns). */
export async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 100 && ref.deref() !== undefined; i++) {
    await new Promise((r) => setTimeout(r, 5));
    gc();
  }
  return ref.deref() === undefined;
}
