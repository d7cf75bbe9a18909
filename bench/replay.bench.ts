/**
 * Replay and tuning throughput over one generated month (mixed scenario, default policy):
 * (0) the CLI end to end, as a user runs `tourniquet replay --out DIR` (read + validate the file,
 *     replay, write report.json and report.html), on the month and on an action-heavy history,
 *     beside the parse floor: the same file read in the same chunks and each line JSON.parse'd
 *     (no validation, no replay), measured in the same run. See benchReplayCli;
 * (a) read: parse + validate the NDJSON history (zod), once;
 * (b) replay: the history through the decider core in virtual time on one core (best of 5, as this shared VM varies by up to 2x run to run; CPU
 *     time is printed beside wall time because benchmark machines are often shared);
 * (c) sweep: a 32-variant grid (stolen-token minConfidence × count) on 2 worker threads, end to
 *     end: each worker parses the file once, then replays its share of the variants. The busiest
 *     worker's CPU time is printed too: the wall time the sweep takes on two otherwise idle cores.
 * Targets (issue 7): replay of 1M detections < 2 s on one core; 32-variant sweep < 60 s on 2 cores.
 *
 * Run: npm run bench -- replay (everything) or npm run bench -- replay-cli (the CLI end to end only),
 * or node --import tsx bench/replay.bench.ts [cli [detections [times [action-heavy identities]]]]
 */
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { DEFAULT_POLICY_PATH, loadDefaultPolicy } from '../services/decider/policy/load.ts';
import { runReplayCli } from '../simulations/cli.ts';
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

/**
 * The action-heavy history: one day of the benign-noise scenario (every kind of benign activity
 * that trips a rule, rolled back by the analysts' verdicts) over a large company: about 463k
 * detections on about 216k identities, about 35 proposals per 100 detections, with rollbacks.
 * Replay cost here is dominated by proposals, approvals and cases rather than by detections.
 */
export const ACTION_HEAVY = { scenario: 'benign-noise', seed: 1, identities: 330_000, days: 1 } as const;

const load1 = () => Math.round(loadavg()[0]! * 100) / 100;

/** The parse floor: the file read in the reader's chunks, split into lines, each JSON.parse'd. */
async function parseFloor(file: string): Promise<number> {
  let rest = '';
  let n = 0;
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const text = rest + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      if (nl > start && JSON.parse(text.slice(start, nl)) !== null) n++;
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  if (rest.length > 0) n++;
  return n;
}

/** Milliseconds the garbage collector paused the main thread while `fn` ran. */
async function withGc<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; ms: number; cpuMs: number; gcMs: number }> {
  let gcMs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  obs.observe({ entryTypes: ['gc'] });
  const cpu = process.cpuUsage();
  const t = performance.now();
  const result = await fn();
  const ms = performance.now() - t;
  const c = cpuMs(cpu);
  // GC entries are delivered asynchronously: let the observer catch up before reading the sum.
  await new Promise((r) => setImmediate(r));
  obs.disconnect();
  return { result, ms, cpuMs: c, gcMs };
}

const sink = { write: () => true };

/** `tourniquet replay --history FILE --policy default --out DIR`, through the CLI's own entry. */
async function cliOnce(file: string, outDir: string): Promise<void> {
  const stderr: string[] = [];
  const code = await runReplayCli({
    history: file,
    policy: DEFAULT_POLICY_PATH,
    out: outDir,
    stdout: sink,
    stderr: { write: (s: string) => stderr.push(s) },
  });
  if (code !== 0) throw new Error(`replay CLI exited ${code}: ${stderr.join('')}`);
}

/** Best of `times` (wall clock) for the floor and the CLI on one file, measured alternately. */
async function cliVersusFloor(
  label: string,
  file: string,
  detections: number,
  outDir: string,
  times: number,
): Promise<Record<string, number>> {
  let floor = Number.POSITIVE_INFINITY;
  let cli = { ms: Number.POSITIVE_INFINITY, cpuMs: 0, gcMs: 0 };
  let loadAt = load1();
  for (let i = 0; i < times; i++) {
    const f = await withGc(() => parseFloor(file));
    if (f.ms < floor) floor = f.ms;
    const c = await withGc(() => cliOnce(file, outDir));
    if (c.ms < cli.ms) {
      cli = c;
      loadAt = load1();
    }
  }
  const reportMb = Math.round(statSync(join(outDir, 'report.json')).size / 1e5) / 10;
  return {
    [`cli.${label}.detections`]: detections,
    [`cli.${label}.history.megabytes`]: Math.round(statSync(file).size / 1e5) / 10,
    [`cli.${label}.parse-floor.ms (best of ${times})`]: Math.round(floor),
    [`cli.${label}.parse-floor (detections/s)`]: Math.round(detections / (floor / 1000)),
    [`cli.${label}.end-to-end.ms (best of ${times})`]: Math.round(cli.ms),
    [`cli.${label}.end-to-end.cpu.ms`]: Math.round(cli.cpuMs),
    [`cli.${label}.end-to-end.gc.share`]: Math.round((cli.gcMs / cli.ms) * 1000) / 1000,
    [`cli.${label}.report.json.megabytes`]: reportMb,
    [`cli.${label} (detections/s)`]: Math.round(detections / (cli.ms / 1000)),
    [`cli.${label}.ratio to parse floor`]: Math.round((cli.ms / floor) * 100) / 100,
    [`cli.${label}.load1`]: loadAt,
  };
}

async function writeCounted(
  lines: Iterable<HistoryLine>,
  file: string,
): Promise<{ lines: number; detections: number }> {
  let detections = 0;
  const counted = function* () {
    for (const l of lines) {
      if (l.type === 'detection') detections++;
      yield l;
    }
  };
  const n = await writeHistoryLines(counted(), file);
  return { lines: n, detections };
}

/**
 * The replay command as a user runs it, end to end, on the month and on the action-heavy history,
 * each beside its parse floor (best of `times`, floor and CLI alternating so load hits both).
 * Targets (issue 19): ≥ 500k detections/s on the month, ≥ 200k/s action-heavy, ≤ 3× the floor.
 */
export async function benchReplayCli(
  detections = 1_000_000,
  times = 3,
  heavyIdentities: number = ACTION_HEAVY.identities,
): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-replay-cli-bench-'));
  try {
    const monthFile = join(dir, 'mixed-month.ndjson');
    const heavyFile = join(dir, 'action-heavy.ndjson');
    const m = await writeCounted(month(detections), monthFile);
    const h = await writeCounted(
      generateHistory({ ...ACTION_HEAVY, identities: heavyIdentities }),
      heavyFile,
    );
    return {
      'cli.load1.start': load1(),
      ...(await cliVersusFloor('month', monthFile, m.detections, join(dir, 'out-month'), times)),
      ...(await cliVersusFloor('action-heavy', heavyFile, h.detections, join(dir, 'out-heavy'), times)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
      ...(await benchReplayCli(detections)),
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
  const cliOnly = process.argv[2] === 'cli';
  const [arg, times, heavy] = process.argv.slice(cliOnly ? 3 : 2).map(Number);
  const results = cliOnly ? await benchReplayCli(arg, times, heavy) : await benchReplay(arg);
  const width = Math.max(...Object.keys(results).map((k) => k.length));
  for (const [k, v] of Object.entries(results))
    console.log(`${k.padEnd(width)}  ${v.toLocaleString('en-US')}`);
}
