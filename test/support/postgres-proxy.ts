/**
 * A loopback proxy in front of the test PostgreSQL server that can swallow the server's answers (as a network that
 * lost them) and cut its connections: what makes a write's outcome unknown to the writer (details.inDoubt).
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach } from "vitest";

export interface AnswerLosingProxy {
  /** The server's URL with the proxy's port. */
  readonly url: string;
  /** From now on the server's answers are dropped (requests still pass). */
  loseAnswers(): void;
  /**
   * From now on, a connection whose client sends a message containing `marker` (e.g. "grf_write_", the data
   * connection's write statements) gets no more answers, from that message's on; other connections are untouched.
   */
  loseAnswersAfter(marker: string): void;
  /** Cuts every connection made so far; connections made after the cut pass everything again. */
  cut(): void;
}

/**
 * Returns a function making proxies to `url`, listening on `port` (default: any free one); every proxy closes after
 * each test (registers afterEach).
 */
export function useAnswerLosingProxies(): (url: string, port?: number) => Promise<AnswerLosingProxy> {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });
  return async (url, port = 0) => {
    const target = new URL(url);
    const sockets = new Set<Socket>();
    let losing = false;
    let marker: string | undefined;
    const server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      let thisOneLoses = false;
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("error", () => undefined);
        s.on("close", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.on("data", (d: Buffer) => {
        if (marker !== undefined && d.includes(marker)) thisOneLoses = true;
        upstream.write(d);
      });
      upstream.on("data", (d) => {
        if (!losing && !thisOneLoses) client.write(d);
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    const proxied = new URL(url);
    proxied.port = String((server.address() as { port: number }).port);
    return {
      url: proxied.href,
      loseAnswers: () => void (losing = true),
      loseAnswersAfter: (m) => void (marker = m),
      cut: () => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        losing = false;
        marker = undefined;
      },
    };
  };
}
