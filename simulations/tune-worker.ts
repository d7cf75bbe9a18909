import { parentPort, workerData } from 'node:worker_threads';
import { TourniquetError } from '../platform/errors.ts';
import { type History, readHistory, withoutRepeatedDetections } from './history.ts';
import { summarizeVariant, type WorkerInit } from './tune.ts';

/**
 * A tuning worker: parses the history once, then replays one policy variant per message and
 * answers with its summary. Loaded as TypeScript through `--import tsx`.
 */
const init = workerData as WorkerInit;
const port = parentPort!;

function report(err: unknown): void {
  if (err instanceof TourniquetError) {
    port.postMessage({
      kind: 'error',
      message: err.message,
      code: err.code,
      ...(err.details ? { details: err.details } : {}),
    });
  } else {
    port.postMessage({
      kind: 'error',
      message: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
  }
}

/** CPU time of this thread (a worker's process.cpuUsage covers the whole process). */
const { threadCpuUsage } = process as unknown as {
  threadCpuUsage?: (prev?: NodeJS.CpuUsage) => NodeJS.CpuUsage;
};
const cpuNow = (): NodeJS.CpuUsage => (threadCpuUsage ? threadCpuUsage() : process.cpuUsage());
const cpuSince = (start: NodeJS.CpuUsage): number => {
  const now = cpuNow();
  return (now.user - start.user + (now.system - start.system)) / 1000;
};

let history: History;
try {
  const started = cpuNow();
  // Re-deliveries are taken out once: every variant would ignore them anyway (see withoutRepeatedDetections).
  history = withoutRepeatedDetections(
    init.history.kind === 'path'
      ? await readHistory(init.history.path, { skipInvalid: init.history.skipInvalid })
      : init.history.history,
  );
  port.on('message', (job: { kind: 'summary'; index: number; policy: never; digest: string }) => {
    try {
      const t = cpuNow();
      const summary = summarizeVariant(history, { policy: job.policy, digest: job.digest }, init.replay);
      port.postMessage({ kind: 'summary', index: job.index, summary, cpuMs: cpuSince(t) });
    } catch (err) {
      report(err);
    }
  });
  port.postMessage({ kind: 'ready', cpuMs: cpuSince(started) });
} catch (err) {
  report(err);
}
