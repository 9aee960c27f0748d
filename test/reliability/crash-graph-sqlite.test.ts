/** kill -9 of an engine + attach graph writer on the sqlite backend: see fixtures/graph-crash-suite.ts. */
import { graphCrashSuite } from "./fixtures/graph-crash-suite.js";

graphCrashSuite("sqlite");
