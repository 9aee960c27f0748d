export declare const FAULT_MESSAGE: "graphrefly.test-fault";
export default function hostActorWithFaults(task: unknown): Promise<string>;
