/**
 * The SQLite side-file look and open (src/backend/sqlite-side-files.ts) for the engine's checkpointer thread, whose
 * entry (workers/checkpointer.ts) imports no backend module: it looks before its connection opens a store, whose
 * writer's actor may have died since the hand-over (review r353 F5), and opens the -shm it reads as a regular file
 * only.
 */
export { assertSqliteSideFiles, openSqliteSideFile } from "../backend/sqlite-side-files.js";
