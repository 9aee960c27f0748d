/**
 * Runs a generator that yields possibly-async values, staying synchronous for as long as every yielded
 * value is synchronous. One code path serves sync backends (zero microtasks: a sync-through save is on
 * disk when `save` returns) and async ones. Inside the generator, `const x = yield backend.read(k)`
 * receives the resolved value; a rejection is thrown at the `yield`.
 */
export type Step = Generator<unknown, void, unknown>;

export function runMaybeAsync(gen: Step): void | Promise<void> {
  let r = gen.next();
  while (!r.done) {
    if (isPromiseLike(r.value)) return continueAsync(gen, r.value);
    r = gen.next(r.value);
  }
}

/** Runs the rest of `gen` once `first`, the value it yielded last, settles (then as runMaybeAsync does). */
export async function continueAsync(gen: Step, first: PromiseLike<unknown>): Promise<void> {
  let pending: unknown = first;
  for (;;) {
    let ok = true;
    let value: unknown;
    try {
      value = await pending;
    } catch (err) {
      ok = false;
      value = err;
    }
    const r = ok ? gen.next(value) : gen.throw(value);
    if (r.done) return;
    pending = r.value;
  }
}

export function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";
}
