/**
 * `npm run bench`: every benchmark, printed as numbers and ratios against the targets the issues
 * set. Benchmarks that need servers (Kafka, Keycloak) run only when those are reachable.
 * Usage: npm run bench [-- name ...]   (names: store, decider, replay, ingest, kafka, executor, console;
 * scale-out and replay-cli, the CLI part of replay alone, run only when named)
 */
import { existsSync } from 'node:fs';

interface Bench {
  name: string;
  module: string;
  fn: string;
  /** Throughput floors: ratio = measured / target (≥ 1 meets it). */
  targets: Record<string, number>;
  /** Time ceilings: ratio = target / measured (≥ 1 meets it). */
  ceilings?: Record<string, number>;
  /** Runs only when named on the command line (it takes minutes). */
  onlyWhenNamed?: boolean;
}

/** `tourniquet replay` end to end (issue 19): throughput, and at most 3x the parse floor of the same file. */
const REPLAY_CLI_TARGETS = {
  'cli.month (detections/s)': 500_000,
  'cli.action-heavy (detections/s)': 200_000,
};
const REPLAY_CLI_CEILINGS = {
  'cli.month.ratio to parse floor': 3,
  'cli.action-heavy.ratio to parse floor': 3,
};

const BENCHES: Bench[] = [
  {
    name: 'store',
    module: './store.bench.ts',
    fn: 'benchStore',
    targets: { 'store.append.batch100.full (events/s)': 50_000 },
  },
  {
    name: 'decider',
    module: './decider.bench.ts',
    fn: 'benchDecider',
    targets: { coreDetectionsPerSecond: 500_000 },
  },
  {
    name: 'replay',
    module: './replay.bench.ts',
    fn: 'benchReplay',
    targets: { 'replay (detections/s)': 500_000, ...REPLAY_CLI_TARGETS },
    ceilings: {
      'replay.1M.wall.ms (best of 5)': 2_000,
      'sweep.32x1M.wall.ms': 60_000,
      ...REPLAY_CLI_CEILINGS,
    },
  },
  {
    name: 'replay-cli',
    module: './replay.bench.ts',
    fn: 'benchReplayCli',
    targets: REPLAY_CLI_TARGETS,
    ceilings: REPLAY_CLI_CEILINGS,
    onlyWhenNamed: true,
  },
  {
    name: 'kafka',
    module: './kafka.bench.ts',
    fn: 'benchKafka',
    targets: {
      'e2e.raw→decision.normal.1proc (detections/s)': 20_000,
      'e2e.raw→decision.normal.2proc (detections/s)': 10_000,
      'e2e.raw→decision.full.2proc (detections/s)': 20_000,
    },
    ceilings: { 'decider.stage ÷ floor (×)': 2 },
  },
  {
    name: 'ingest',
    module: './ingest.bench.ts',
    fn: 'benchIngest',
    targets: { 'server.c16.batch1 (detections/s)': 5_000, 'ratio.server/floor.c16.batch1': 0.5 },
    ceilings: { 'server.c16.batch1.p99.ms': 50 },
  },
  { name: 'executor', module: './executor.bench.ts', fn: 'benchExecutor', targets: {} },
  {
    name: 'console',
    module: './console.bench.ts',
    fn: 'benchConsole',
    targets: {},
    ceilings: {
      'queue.1000.firstContentfulPaint.ms (median of 5)': 1_000,
      'queue.1000.domContentLoaded.ms (median of 5)': 1_000,
      'sse.proposal→card.ms (median of 5)': 1_000,
    },
  },
  {
    name: 'scale-out',
    module: './scale-out.bench.ts',
    fn: 'benchScaleOut',
    targets: {},
    onlyWhenNamed: true,
  },
];

const wanted = process.argv.slice(2);
const fmt = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(3));
let failed = false;
for (const b of BENCHES) {
  if (wanted.length > 0 ? !wanted.includes(b.name) : b.onlyWhenNamed) continue;
  if (!existsSync(new URL(b.module, import.meta.url))) {
    console.log(`\n## ${b.name}: not present`);
    continue;
  }
  console.log(`\n## ${b.name}`);
  try {
    const mod = (await import(b.module)) as Record<string, () => Promise<Record<string, number | string>>>;
    const results = await mod[b.fn]!();
    for (const [k, v] of Object.entries(results)) {
      if (typeof v !== 'number') {
        console.log(`${k.padEnd(58)} ${v}`);
        continue;
      }
      const target = b.targets[k];
      const ceiling = b.ceilings?.[k];
      const ratio = target
        ? `  (target ≥ ${fmt(target)}, ratio ${(v / target).toFixed(2)})`
        : ceiling
          ? `  (target ≤ ${fmt(ceiling)}, ratio ${(ceiling / v).toFixed(2)})`
          : '';
      console.log(`${k.padEnd(58)} ${fmt(v)}${ratio}`);
    }
  } catch (err) {
    failed = true;
    console.log(`${b.name} failed: ${(err as Error).stack ?? String(err)}`);
  }
}
if (failed) process.exitCode = 1;
