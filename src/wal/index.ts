export {
  REPLAY_ORDER,
  WAL_FORMAT_VERSION,
  isLifecycle,
  parseWalFrame,
  type Lifecycle,
  type WALBaseChange,
  type WALFrame,
  type WALFrameBody,
} from "./frame.js";
export { WAL_KEY_SEGMENT, WAL_FRAME_SEQ_PAD, graphWalPrefix, walFrameKey, parseWalFrameKey } from "./keys.js";
export {
  canonicalWalFrameBody,
  walFrameChecksum,
  verifyWalFrameChecksum,
  type WALChecksumBody,
} from "./checksum.js";
export { walFrameCodec, sealWalFrame } from "./codec.js";
