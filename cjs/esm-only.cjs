"use strict";
// What `require("graphrefly-storage")` loads (package.json `exports`, the "require" condition). The package is ES
// modules only, and without this entry Node answered require() with ERR_PACKAGE_PATH_NOT_EXPORTED, which names no
// cause. This says what to do instead; the code is Node's own for an ES module loaded with require().
const err = new Error(
  'graphrefly-storage is an ES module package (ESM only) and cannot be loaded with require(). ' +
    'Load it with `import { openStorageEngine } from "graphrefly-storage"` in an ES module, ' +
    'or from CommonJS with `const storage = await import("graphrefly-storage")` (inside an async function).',
);
err.code = "ERR_REQUIRE_ESM";
throw err;
