/**
 * The rule for every promise the library's API returns (issue 11 item 6): a rejection its caller ignores (as from
 * a timer) never becomes an unhandled rejection, which would end the host process under Node's default. Each
 * returned promise is marked handled here and still rejects for a caller who awaits it. Where there is an onError
 * to tell (the engine), `reported` passes the failure there too.
 */
function ignore(): void {
  // the caller who awaits the promise still sees the rejection
}

/** Marks `p` handled and returns it unchanged. */
export function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(ignore);
  return p;
}

/** `handled`, and the failure goes to `report` too. */
export function reported<T>(p: Promise<T>, report: (err: Error) => void): Promise<T> {
  p.catch((err: unknown) => report(err instanceof Error ? err : new Error(String(err))));
  return p;
}

/** Iterates `source` with every next()/return()/throw() promise `handled` (and `reported` with a `report`). */
export function handledIterator<T>(source: AsyncIterable<T>, report?: (err: Error) => void): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const mark = <R>(p: Promise<R>): Promise<R> => (report ? reported(p, report) : handled(p));
  const wrapped: AsyncGenerator<T> = {
    next: (...args) => mark(it.next(...args)),
    return: (value) => mark(it.return ? it.return(value) : Promise.resolve({ done: true as const, value: value as never })),
    throw: (err) => mark(it.throw ? it.throw(err) : Promise.reject(err)),
    [Symbol.asyncIterator]() {
      return wrapped;
    },
  };
  return wrapped;
}

/** Resolves after the event loop's current turn: what arrived meanwhile (a port's messages, timers) runs first. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
