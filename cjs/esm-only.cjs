"use strict";
// What `require("graphrefly-storage")` loads on Node 20.12 to 20.18 (package.json `exports`, the "require"
// condition). The package is ES modules only. Node 20.19+ (and 22.12+) load it with require() through the
// "module-sync" condition, listed before this one; older Nodes do not know that condition and reach this file. Without
// it Node answered require() with ERR_PACKAGE_PATH_NOT_EXPORTED, which names no cause. This says what to do instead;
// the code is Node's own for an ES module loaded with require().
const err = new Error(
  'graphrefly-storage is an ES module package (ESM only), and this Node.js (' + process.versions.node + ') cannot ' +
    'load it with require(): Node.js 20.12 to 20.18 cannot require() an ES module (20.19+ and 22.12+ can). ' +
    'Load it with `import { openStorageEngine } from "graphrefly-storage"` in an ES module, ' +
    'or from CommonJS with `const storage = await import("graphrefly-storage")` (inside an async function), ' +
    'or upgrade Node.js to 20.19 or newer.',
);
err.code = "ERR_REQUIRE_ESM";
throw err;
