// comlink ships its Node adapter without a declaration file usable from NodeNext resolution; only the turn-ring bench
// uses it (a Worker object is not an EventTarget); the engine talks to MessagePorts through src/engine/rpc.ts.
declare module "comlink/dist/esm/node-adapter.mjs" {
  import type { Endpoint } from "comlink";
  interface NodeEndpointLike {
    postMessage(message: unknown, transfer?: readonly unknown[]): void;
    on(type: string, listener: (value: unknown) => void): void;
    off(type: string, listener: (value: unknown) => void): void;
    start?: () => void;
  }
  export default function nodeEndpoint(nep: NodeEndpointLike): Endpoint;
}
