// Undo what a benchmark changed even when it fails or is interrupted: each step that creates
// something registers a synchronous undo; the normal path runs it early (disposer), and whatever
// is left runs on exit, on an uncaught exception, or on SIGINT/SIGTERM.

type Task = () => void;

const tasks = new Map<number, { label: string; task: Task }>();
let nextId = 1;
let installed = false;

/** Register an undo step; returns a disposer that runs it now (once) and forgets it. */
export function onCleanup(label: string, task: Task): () => void {
  install();
  const id = nextId++;
  tasks.set(id, { label, task });
  return () => {
    const entry = tasks.get(id);
    if (entry === undefined) return;
    tasks.delete(id);
    runOne(entry.label, entry.task);
  };
}

/** Run every remaining undo step, newest first (undo in reverse order of doing). */
export function runCleanups(): void {
  const entries = [...tasks.entries()].reverse();
  tasks.clear();
  for (const [, { label, task }] of entries) runOne(label, task);
}

function runOne(label: string, task: Task): void {
  try {
    task();
  } catch (err) {
    process.stderr.write(`cleanup "${label}" failed: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runCleanups);
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // `on`, not `once`: a second signal (terminal plus run-all forwarding it) must not find the
    // default action back in place and kill us halfway through the cleanup.
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      process.stderr.write(`benchmark interrupted by ${signal}; cleaning up\n`);
      runCleanups();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}
