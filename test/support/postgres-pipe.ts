/**
 * A loopback proxy in front of the test PostgreSQL server whose every chunk, each way, goes through a hook: what a
 * test's fake server is made of (a server that holds a request, swallows answers, or freezes). The hooks decide; the
 * plumbing (sockets, errors, closing both sides, cleanup after each test) is here once.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach } from "vitest";

/** One client connection through the proxy; `marked` is the hooks' own flag for it (e.g. "its answers are lost"). */
export interface PipeConnection {
  marked: boolean;
  /** Sends `data` to the server now, ahead of anything held (e.g. a statement of the test's own on this session). */
  send(data: Buffer): void;
  /** Sends `data` to the client now, in one write (e.g. held answers joined, so that the client reads them at once). */
  sendToClient(data: Buffer): void;
  /** Destroys this connection alone, both sides (a reset on one link). */
  cut(): void;
  /** Either side of it has closed (the client dropped it, the server ended it, or a cut). */
  readonly closed: boolean;
}

export interface PipeHooks {
  /** A chunk a client sent: call `pass()` to send it on now, or keep `pass` to send it later (or never). */
  toServer?(data: Buffer, pass: () => void, conn: PipeConnection): void;
  /** A chunk the server sent: the same, toward the client. */
  toClient?(data: Buffer, pass: () => void, conn: PipeConnection): void;
  /**
   * While true, one side ending or closing leaves the other open (a frozen host never answers a FIN); asked for the
   * connection whose side ended.
   */
  frozen?(conn: PipeConnection): boolean;
  /**
   * Asked for each new client connection: false closes it at once, before anything is connected to the server (a
   * server that takes no connections yet, for the clients of this pipe alone).
   */
  accept?(): boolean;
}

export interface Pipe {
  /** The server's URL with the proxy's port. */
  readonly url: string;
  /** Destroys every connection made so far (a network blip). */
  cut(): void;
}

/** Returns a function making pipes to `url`; every pipe closes after each test (registers afterEach). */
export function usePipes(): (url: string, hooks: PipeHooks) => Promise<Pipe> {
  const made: Array<{ server: Server; sockets: Set<Socket> }> = [];
  afterEach(async () => {
    for (const { server, sockets } of made.splice(0)) {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
  return async (url, hooks) => {
    const target = new URL(url);
    const sockets = new Set<Socket>();
    const server = createServer({ allowHalfOpen: true }, (client) => {
      if (hooks.accept?.() === false) return void client.destroy();
      const upstream = connect({ port: Number(target.port), host: target.hostname, allowHalfOpen: true });
      const conn: PipeConnection = {
        marked: false,
        send: (data) => void upstream.write(data),
        sendToClient: (data) => void client.write(data),
        cut: () => {
          client.destroy();
          upstream.destroy();
        },
        get closed() {
          return client.destroyed || upstream.destroyed;
        },
      };
      const frozen = () => hooks.frozen?.(conn) === true;
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("error", () => undefined);
        s.on("end", () => {
          if (!frozen()) (s === client ? upstream : client).end();
        });
        s.on("close", () => {
          if (frozen()) return;
          client.destroy();
          upstream.destroy();
        });
      }
      const toServer = hooks.toServer ?? ((_d, pass) => pass());
      const toClient = hooks.toClient ?? ((_d, pass) => pass());
      client.on("data", (d: Buffer) => toServer(d, () => void upstream.write(d), conn));
      upstream.on("data", (d: Buffer) => toClient(d, () => void client.write(d), conn));
    });
    made.push({ server, sockets });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const proxied = new URL(url);
    proxied.port = String((server.address() as { port: number }).port);
    return {
      url: proxied.href,
      cut: () => {
        for (const s of sockets) s.destroy();
        sockets.clear();
      },
    };
  };
}
