/**
 * A promise's outcome as a value a test compares in one assertion, instead of awaiting it inside expect().rejects
 * (which cannot say "still pending", nor compare the error by identity).
 */

/** "resolved", or "rejected <code>" (the error's String() when it has no code). */
export function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "resolved",
    (e: unknown) => `rejected ${(e as { code?: string }).code ?? String(e)}`,
  );
}

/** "resolved", or the error `p` rejected with (itself: compare it with toBe). */
export function settledTo(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => "resolved",
    (e: unknown) => e,
  );
}

/** What `p` settled to so far: "pending", "resolved" or its rejection (the error itself). */
export function track(p: Promise<unknown>): { readonly state: unknown } {
  const t = { state: "pending" as unknown };
  p.then(
    () => void (t.state = "resolved"),
    (e: unknown) => void (t.state = e),
  );
  return t;
}

/** `n` turns of the event loop (each waits for the I/O and promise jobs queued before it). */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}
