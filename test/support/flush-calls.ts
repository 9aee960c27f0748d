/** `turns` event-loop turns with `perTurn` flush() calls in each (a server whose handlers each flush); their answers. */
export async function flushCalls(tier: { flush(): Promise<void> }, turns: number, perTurn: number): Promise<Array<Promise<void>>> {
  const calls: Array<Promise<void>> = [];
  for (let t = 0; t < turns; t++) {
    for (let i = 0; i < perTurn; i++) calls.push(tier.flush());
    await new Promise((r) => setImmediate(r));
  }
  return calls;
}
