/**
 * Replay and tuning throughput over one generated month (mixed scenario, default policy):
 * (a) read: parse + validate the NDJSON history (zod), once;
 * (b) replay: the history through the decider core in virtual time on one core (best of 5, as this shared VM varies by up to 2x run to run; CPU
 *     time is printed beside wall time because benchmark machines are often shared);
 * (c) sweep: a 32-variant grid (stolen-token minConfidence × count) on 2 worker threads, end to
 *     end: each worker parses the file once, then replays its share of the variants. The busiest
 *     worker's CPU time is printed too: the wall time the sweep takes on two otherwise idle cores.
 * Targets (issue 7): replay of 1M detections < 2 s on one core; 32-variant sweep < 60 s on 2 cores.
 *
 * Run: npm run bench -- replay, or node --import tsx bench/replay.bench.ts [detections]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';
import { type HistoryLine, readHistory, writeHistoryLines } from '../simulations/history.ts';
import { replayHistory } from '../simulations/replay.ts';
import { summarize } from '../simulations/report.ts';
import { generateHistory } from '../simulations/scenarios/index.ts';
import { runTune, type TuneStats } from '../simulations/tune.ts';

const DAYS = 30;

/** The mixed month, cut after exactly `detections` detections (identities sized to reach it). */
function* month(detections: number): Generator<HistoryLine> {
  const identities = Math.ceil(detections / DAYS / 0.97);
  let n = 0;
  for (const line of generateHistory({
    scenario: 'mixed',
    seed: 1,
    identities,
    days: DAYS,
    noisePerIdentityDay: 1,
  })) {
    if (line.type === 'detection' && ++n > detections) return;
    yield line;
  }
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1000;
}

export async function benchReplay(detections = 1_000_000): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-replay-bench-'));
  const file = join(dir, 'mixed-month.ndjson');
  const policy = loadDefaultPolicy();
  try {
    let t = performance.now();
    const lines = await writeHistoryLines(month(detections), file);
    const generateMs = performance.now() - t;

    t = performance.now();
    const history = await readHistory(file);
    const readMs = performance.now() - t;
    const detectionCount = history.records.filter((r) => r.type === 'detection').length;

    let best = Number.POSITIVE_INFINITY;
    let bestCpu = Number.POSITIVE_INFINITY;
    let summary: ReturnType<typeof summarize> | undefined;
    for (let i = 0; i < 5; i++) {
      const cpu = process.cpuUsage();
      t = performance.now();
      const run = replayHistory(history, policy);
      const ms = performance.now() - t;
      const c = cpuMs(cpu);
      if (ms < best) best = ms;
      if (c < bestCpu) bestCpu = c;
      summary ??= summarize(run);
    }

    const sweeps = [
      'rules.stolen-token.when.minConfidence=0.5..0.85:0.05',
      'rules.stolen-token.when.count=1..4:1',
    ];
    t = performance.now();
    let stats: TuneStats | undefined;
    const tune = await runTune({
      history: file,
      policy,
      sweeps,
      objective: 'f1',
      workers: 2,
      onStats: (s) => (stats = s),
    });
    const sweepMs = performance.now() - t;
    const variantCpu = stats!.variantCpuMs;

    return {
      'replay.history.lines': lines,
      'replay.history.detections': detectionCount,
      'replay.history.megabytes': Math.round(statSync(file).size / 1e5) / 10,
      'replay.generate.ms': Math.round(generateMs),
      'replay.read+validate.ms': Math.round(readMs),
      'replay.read+validate (lines/s)': Math.round(lines / (readMs / 1000)),
      'replay.1M.wall.ms (best of 5)': Math.round(best),
      'replay.1M.cpu.ms (best of 5)': Math.round(bestCpu),
      'replay (detections/s)': Math.round(detectionCount / (best / 1000)),
      'replay.actionsProposed': summary!.totals.actionsProposed,
      'replay.recall': summary!.metrics.recall,
      'sweep.variants': tune.variants.length,
      'sweep.workers': 2,
      'sweep.32x1M.wall.ms': Math.round(sweepMs),
      'sweep.worker.parse.cpu.ms (max)': Math.round(Math.max(...stats!.parseCpuMs)),
      'sweep.variant.cpu.ms (mean)': Math.round(variantCpu.reduce((a, b) => a + b, 0) / variantCpu.length),
      'sweep.critical.path.cpu.ms (busiest worker)': Math.round(Math.max(...stats!.workerCpuMs)),
      'sweep.frontier': tune.frontier.length,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = process.argv[2] ? Number(process.argv[2]) : undefined;
  const results = await benchReplay(n);
  const width = Math.max(...Object.keys(results).map((k) => k.length));
  for (const [k, v] of Object.entries(results))
    console.log(`${k.padEnd(width)}  ${v.toLocaleString('en-US')}`);
}
