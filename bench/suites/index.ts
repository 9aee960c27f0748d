/** Every suite, in the order the issue lists them. */
import type { Suite } from "../lib/types.js";
import { codecSuite } from "./codec.js";
import { eventLoopDelaySuite } from "./event-loop-delay.js";
import { mainThreadCostSuite } from "./main-thread-cost.js";
import { postgresSuite } from "./postgres.js";
import { scalingSuite } from "./scaling.js";
import { sqliteLockingSuite } from "./sqlite-locking.js";
import { walThroughputSuite } from "./wal-throughput.js";

export const SUITES: readonly Suite[] = [mainThreadCostSuite, walThroughputSuite, eventLoopDelaySuite, scalingSuite, codecSuite, postgresSuite, sqliteLockingSuite];
