/**
 * An executor in its own process, for the two-executor and SIGKILL tests:
 *   node --import tsx test/support/executor-child.ts
 * Environment:
 *   TQ_STORE          SQLite event store file (shared with the test and other executors)
 *   TQ_PROVIDERS      provider configuration file (app/providers-config.ts)
 *   TQ_EXECUTOR_ID    executor id (stable across restarts)
 *   TQ_JOURNAL        provider call journal (JSON lines, appended synchronously: survives SIGKILL)
 *   TQ_KILL_AT        optional "<phase>:<n>": SIGKILL ourselves right after the n-th journal line of that
 *                     phase (capture, apply-start, apply-end, revert-start, revert-end, verify)
 *   TQ_DATA_DIR       where relative provider paths (a dry-run journal) resolve (default /tmp)
 *   TQ_LEASE_MS, TQ_CONCURRENCY, TQ_LOG_LEVEL
 * Prints "ready" once the executor is subscribed; SIGTERM stops it gracefully.
 */

import { buildProviders, executorTuning, loadProvidersConfig } from '../../app/providers-config.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { createLogger } from '../../platform/log.ts';
import { Executor } from '../../services/executor/executor.ts';
import type { IdentityProvider } from '../../services/executor/providers/port.ts';
import { JournalingProvider, type JournalLine } from './executor-fixtures.ts';

const need = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};

const storePath = need('TQ_STORE');
const executorId = need('TQ_EXECUTOR_ID');
const journal = need('TQ_JOURNAL');
const config = loadProvidersConfig(need('TQ_PROVIDERS'));

let killAt: { phase: string; n: number } | undefined;
if (process.env.TQ_KILL_AT) {
  const [phase, n] = process.env.TQ_KILL_AT.split(':');
  killAt = { phase: phase!, n: Number(n ?? 1) };
}
let seen = 0;
const hook = (phase: JournalLine['phase']) => {
  if (killAt && phase === killAt.phase && ++seen >= killAt.n) process.kill(process.pid, 'SIGKILL');
};

const providers: Record<string, IdentityProvider> = {};
for (const [key, p] of Object.entries(buildProviders(config, process.env.TQ_DATA_DIR ?? '/tmp'))) {
  providers[key] = new JournalingProvider(p, journal, executorId, hook);
}

const store = new SqliteEventStore({ path: storePath, pollMs: 20 });
const tuning = executorTuning(config);
const executor = new Executor({
  store,
  providers,
  executorId,
  log: createLogger(process.env.TQ_LOG_LEVEL ?? 'warn', executorId),
  ...tuning,
  ...(process.env.TQ_LEASE_MS ? { leaseMs: Number(process.env.TQ_LEASE_MS) } : {}),
  ...(process.env.TQ_CONCURRENCY ? { concurrency: Number(process.env.TQ_CONCURRENCY) } : {}),
});

await executor.start((err) => {
  console.error(`executor ${executorId} stopped: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(2);
});
console.log('ready');

process.on('SIGTERM', () => {
  void (async () => {
    await executor.stop();
    await store.close();
    process.exit(0);
  })();
});
