/** Types of fault-worker.mjs (a worker entry: its message is in fault-messages.mjs; never import it on the test thread). */
export default function hostActorWithFaults(task: unknown): Promise<string>;
