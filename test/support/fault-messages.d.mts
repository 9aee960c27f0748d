/** Types of fault-messages.mjs (plain JS: the worker entry fault-worker.mjs imports it too). */
export declare const FAULT_MESSAGE: "graphrefly.test-fault";
