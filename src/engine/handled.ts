/**
 * The engine's rule for the promises its API returns (issue 11 item 6): a rejection the caller ignores never
 * becomes an unhandled rejection (Node would end the host process). Each returned promise is marked handled
 * here, and failures of engine-level calls (compact, runJob, stats, close, injectFault, a listByPrefix page) are
 * also passed to onError, which then hears them even when nobody awaits the call. Tier calls reject to their
 * caller only; their flush failures reach onError as tier faults already do.
 */
export function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** `quiet`, and the failure goes to `report` too. */
export function reported<T>(p: Promise<T>, report: (err: Error) => void): Promise<T> {
  p.catch((err: unknown) => report(err instanceof Error ? err : new Error(String(err))));
  return p;
}

/** An async iterator whose next()/return()/throw() promises follow `reported` (an ignored page never crashes). */
export function reportedIterator<T>(it: AsyncGenerator<T>, report: (err: Error) => void): AsyncGenerator<T> {
  const wrapped: AsyncGenerator<T> = {
    next: (...args) => reported(it.next(...args), report),
    return: (value) => reported(it.return(value), report),
    throw: (err) => reported(it.throw(err), report),
    [Symbol.asyncIterator]() {
      return wrapped;
    },
  };
  return wrapped;
}
