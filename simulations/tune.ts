import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { stringify } from 'yaml';
import { digestOf } from '../platform/digest.ts';
import { TourniquetError } from '../platform/errors.ts';
import { Policy } from '../services/decider/policy/schema.ts';
import { type History, readHistory, withoutRepeatedDetections } from './history.ts';
import { type ReplayOptions, type ReplayPolicy, replayHistory } from './replay.ts';
import { type ReportMetrics, type ReportTotals, summarize } from './report.ts';
import { type ReplayDetails, replayWithDetails } from './run-replay.ts';
import { expandGrid, parseSweep, type Variant, variantLabel } from './sweep.ts';

/**
 * Threshold tuning: a grid of policy variants replayed over the same history on worker threads,
 * the Pareto frontier over (recall ↑, benign identities disrupted ↓, approvals per day ↓), and a
 * recommended policy picked by an objective.
 */

export type Objective =
  | { kind: 'f1' }
  | { kind: 'recall-at-precision'; minPrecision: number }
  | { kind: 'cost'; miss: number; disruption: number; approval: number };

const DEFAULT_COST = { miss: 100, disruption: 10, approval: 1 };

/** Parses `f1`, `recall-at-precision:0.99`, `cost` or `cost:MISS,DISRUPTION,APPROVAL`. */
export function parseObjective(text: string): Objective {
  const t = text.trim();
  if (t === 'f1') return { kind: 'f1' };
  const rap = /^recall-at-precision:([\d.]+)$/.exec(t);
  if (rap) {
    const p = Number(rap[1]);
    if (!(p >= 0 && p <= 1)) throw bad(`objective ${t}: the precision must be between 0 and 1`);
    return { kind: 'recall-at-precision', minPrecision: p };
  }
  if (t === 'cost') return { kind: 'cost', ...DEFAULT_COST };
  const cost = /^cost:([\d.]+),([\d.]+),([\d.]+)$/.exec(t);
  if (cost)
    return { kind: 'cost', miss: Number(cost[1]), disruption: Number(cost[2]), approval: Number(cost[3]) };
  throw bad(`unknown objective "${text}" (f1, recall-at-precision:P, cost or cost:MISS,DISRUPTION,APPROVAL)`);
}

function objectiveLabel(o: Objective): string {
  if (o.kind === 'f1') return 'f1';
  if (o.kind === 'recall-at-precision') return `recall-at-precision:${o.minPrecision}`;
  return `cost:${o.miss},${o.disruption},${o.approval}`;
}

function bad(message: string): TourniquetError {
  return new TourniquetError('VALIDATION_FAILED', message, { status: 400 });
}

/** What one variant's replay came to (the worker sends this back; no action lists). */
export interface VariantSummary {
  totals: ReportTotals;
  metrics: ReportMetrics;
  benignDisrupted: number;
}

export interface VariantResult extends VariantSummary {
  index: number;
  label: string;
  assignments: Array<{ path: string; value: unknown }>;
  digest: string;
  /** Missed malicious identities × miss + benign disrupted × disruption + approvals requested × approval. */
  cost: number;
  onFrontier: boolean;
}

export interface TuneResult {
  policy: { id: string; version: string; digest: string };
  objective: string;
  sweeps: string[];
  variants: VariantResult[];
  /** Variant indices on the Pareto frontier, by recall (descending), then disruption, then approvals. */
  frontier: number[];
  recommended: {
    index: number;
    label: string;
    reason: string;
    policy: { id: string; version: string; digest: string };
    /** Where the recommended policy was written (with `out`). */
    file?: string;
  };
}

export interface TuneInput {
  /** A parsed history, or the path of an NDJSON history (each worker then parses it once). */
  history: History | string;
  policy: ReplayPolicy;
  sweeps: readonly string[];
  objective?: Objective | string;
  /** Worker threads (default: available cores, at most one per variant); 0 runs in this thread. */
  workers?: number;
  /** Directory for recommended-policy.yaml, tune.json, report.json and report.html. */
  out?: string;
  skipInvalid?: boolean;
  replay?: Omit<ReplayOptions, 'onEvent' | 'onProgress'>;
  onProgress?: (done: number, total: number) => void;
  /** CPU time spent per worker (parsing, then each variant), for benchmarks; not part of the result. */
  onStats?: (stats: TuneStats) => void;
  /** Receives the recommended variant's full replay (vs the input policy): what the HTML report plots. */
  onDetails?: (details: ReplayDetails, result: TuneResult) => void | Promise<void>;
}

/** Whether a dominates b: no worse on every axis, better on one. */
function dominates(a: VariantResult, b: VariantResult): boolean {
  const ge =
    a.metrics.recall >= b.metrics.recall &&
    a.benignDisrupted <= b.benignDisrupted &&
    a.metrics.approvalsPerDay <= b.metrics.approvalsPerDay;
  const gt =
    a.metrics.recall > b.metrics.recall ||
    a.benignDisrupted < b.benignDisrupted ||
    a.metrics.approvalsPerDay < b.metrics.approvalsPerDay;
  return ge && gt;
}

export function paretoFrontier(results: VariantResult[]): number[] {
  const front = results.filter((r) => !results.some((o) => o !== r && dominates(o, r)));
  front.sort(
    (a, b) =>
      b.metrics.recall - a.metrics.recall ||
      a.benignDisrupted - b.benignDisrupted ||
      a.metrics.approvalsPerDay - b.metrics.approvalsPerDay ||
      a.index - b.index,
  );
  return front.map((r) => r.index);
}

function pick(results: VariantResult[], objective: Objective): { best: VariantResult; reason: string } {
  const tie = (a: VariantResult, b: VariantResult) =>
    a.benignDisrupted - b.benignDisrupted ||
    a.metrics.approvalsPerDay - b.metrics.approvalsPerDay ||
    Number(b.onFrontier) - Number(a.onFrontier) ||
    a.index - b.index;
  const sorted = [...results];
  if (objective.kind === 'f1') {
    sorted.sort((a, b) => b.metrics.f1 - a.metrics.f1 || b.metrics.recall - a.metrics.recall || tie(a, b));
    return { best: sorted[0]!, reason: `highest f1 (${sorted[0]!.metrics.f1})` };
  }
  if (objective.kind === 'recall-at-precision') {
    const ok = sorted.filter((r) => r.metrics.precision >= objective.minPrecision);
    if (ok.length > 0) {
      ok.sort(
        (a, b) =>
          b.metrics.recall - a.metrics.recall || b.metrics.precision - a.metrics.precision || tie(a, b),
      );
      return {
        best: ok[0]!,
        reason: `highest recall (${ok[0]!.metrics.recall}) with precision >= ${objective.minPrecision}`,
      };
    }
    sorted.sort(
      (a, b) => b.metrics.precision - a.metrics.precision || b.metrics.recall - a.metrics.recall || tie(a, b),
    );
    return {
      best: sorted[0]!,
      reason: `no variant reached precision ${objective.minPrecision}; highest precision (${sorted[0]!.metrics.precision}) instead`,
    };
  }
  sorted.sort((a, b) => a.cost - b.cost || b.metrics.recall - a.metrics.recall || tie(a, b));
  return {
    best: sorted[0]!,
    reason: `lowest cost ${sorted[0]!.cost} (missed × ${objective.miss} + benign disrupted × ${objective.disruption} + approvals × ${objective.approval})`,
  };
}

export interface TuneStats {
  /** CPU milliseconds each worker spent reading and validating the history. */
  parseCpuMs: number[];
  /** CPU milliseconds per variant replay, by variant index. */
  variantCpuMs: number[];
  /** CPU milliseconds per worker in total (parse + its variants): the critical path on idle cores. */
  workerCpuMs: number[];
}

type Job = { kind: 'summary'; index: number; policy: Policy; digest: string };
type Reply =
  | { kind: 'ready'; cpuMs: number }
  | { kind: 'summary'; index: number; summary: VariantSummary; cpuMs: number }
  | { kind: 'error'; message: string; code?: string; details?: Record<string, unknown> };

export interface WorkerInit {
  history: { kind: 'path'; path: string; skipInvalid: boolean } | { kind: 'records'; history: History };
  replay: Omit<ReplayOptions, 'onEvent' | 'onProgress'>;
}

/** One variant's replay, reduced to what tuning compares. */
export function summarizeVariant(
  history: History,
  policy: ReplayPolicy,
  opts: WorkerInit['replay'],
): VariantSummary {
  const s = summarize(replayHistory(history, policy, opts));
  return { totals: s.totals, metrics: s.metrics, benignDisrupted: s.benignDisrupted };
}

function workerError(reply: Extract<Reply, { kind: 'error' }>): Error {
  if (reply.code) {
    return new TourniquetError(reply.code as never, reply.message, {
      status: 400,
      ...(reply.details ? { details: reply.details } : {}),
    });
  }
  return new Error(reply.message);
}

/** Runs the variants on `n` worker threads; each parses the history once, then takes jobs one by one. */
async function runOnWorkers(
  init: WorkerInit,
  variants: readonly Variant[],
  n: number,
  done: (index: number, summary: VariantSummary) => void,
  stats: TuneStats,
): Promise<void> {
  const url = new URL('./tune-worker.ts', import.meta.url);
  let next = 0;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let finished = 0;
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        reject(err);
      };
      const feed = (w: Worker) => {
        if (failed) return;
        const v = variants[next++];
        if (!v) {
          finished++;
          if (finished === n) resolve();
          return;
        }
        const job: Job = { kind: 'summary', index: v.index, policy: v.policy, digest: v.digest };
        w.postMessage(job);
      };
      for (let i = 0; i < n; i++) {
        const w = new Worker(url, { workerData: init, execArgv: ['--import', 'tsx'] });
        workers.push(w);
        stats.workerCpuMs[i] = 0;
        w.on('message', (reply: Reply) => {
          if (reply.kind === 'error') return fail(workerError(reply));
          stats.workerCpuMs[i]! += reply.cpuMs;
          if (reply.kind === 'ready') stats.parseCpuMs[i] = reply.cpuMs;
          else {
            stats.variantCpuMs[reply.index] = reply.cpuMs;
            done(reply.index, reply.summary);
          }
          feed(w);
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (code !== 0) fail(new Error(`tune worker exited with code ${code}`));
        });
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** The recommended policy: the winning variant under a new version, so its digest is its own. */
function recommendedPolicy(base: ReplayPolicy, v: Variant): { policy: Policy; digest: string } {
  const policy = Policy.parse({ ...v.policy, version: `${base.policy.version}-tuned.${v.index}` });
  return { policy, digest: digestOf(policy) };
}

function recommendedYaml(result: TuneResult, policy: Policy, base: ReplayPolicy): string {
  const v = result.variants[result.recommended.index]!;
  const header = [
    `# Recommended by \`tourniquet tune\` (objective ${result.objective}): ${result.recommended.reason}.`,
    `# Base policy ${base.policy.id} ${base.policy.version} (${base.digest}).`,
    `# Changed: ${v.label}`,
    `# Replayed: recall ${v.metrics.recall}, precision ${v.metrics.precision}, f1 ${v.metrics.f1}, ` +
      `benign identities disrupted ${v.benignDisrupted}, approvals/day ${v.metrics.approvalsPerDay}.`,
    '# Review it and replay it against more history before activating it.',
    '',
  ].join('\n');
  return header + stringify(policy, { lineWidth: 0 });
}

/** The `tourniquet tune` engine: grid, parallel replays, frontier, recommendation, files. */
export async function runTune(input: TuneInput): Promise<TuneResult> {
  const objective =
    typeof input.objective === 'string'
      ? parseObjective(input.objective)
      : (input.objective ?? { kind: 'f1' });
  const sweeps = input.sweeps.map(parseSweep);
  const variants = expandGrid(input.policy.policy, sweeps);
  const replay = input.replay ?? {};
  const requested = input.workers ?? availableParallelism();
  if (!Number.isInteger(requested) || requested < 0)
    throw bad(`--workers must be a non-negative integer, got ${requested}`);
  const nWorkers = Math.min(requested, variants.length);

  const summaries = new Array<VariantSummary | undefined>(variants.length);
  let completed = 0;
  const done = (index: number, s: VariantSummary) => {
    summaries[index] = s;
    completed++;
    input.onProgress?.(completed, variants.length);
  };

  let history: History | undefined = typeof input.history === 'string' ? undefined : input.history;
  const stats: TuneStats = { parseCpuMs: [], variantCpuMs: [], workerCpuMs: [] };
  const cpu = (since: NodeJS.CpuUsage) => {
    const u = process.cpuUsage(since);
    return (u.user + u.system) / 1000;
  };
  if (nWorkers === 0) {
    let t = process.cpuUsage();
    history ??= await readHistory(input.history as string, { skipInvalid: Boolean(input.skipInvalid) });
    history = withoutRepeatedDetections(history); // once for all variants
    stats.parseCpuMs.push(cpu(t));
    for (const v of variants) {
      t = process.cpuUsage();
      done(v.index, summarizeVariant(history, v, replay));
      stats.variantCpuMs[v.index] = cpu(t);
    }
    stats.workerCpuMs.push(stats.parseCpuMs[0]! + stats.variantCpuMs.reduce((a, b) => a + b, 0));
  } else {
    const init: WorkerInit = {
      history:
        typeof input.history === 'string'
          ? { kind: 'path', path: input.history, skipInvalid: Boolean(input.skipInvalid) }
          : { kind: 'records', history: input.history },
      replay,
    };
    await runOnWorkers(init, variants, nWorkers, done, stats);
  }
  input.onStats?.(stats);

  const results: VariantResult[] = variants.map((v) => {
    const s = summaries[v.index]!;
    const missed = s.metrics.maliciousIdentities - s.metrics.containedIdentities;
    const c = objective.kind === 'cost' ? objective : DEFAULT_COST;
    return {
      index: v.index,
      label: variantLabel(v),
      assignments: v.assignments,
      digest: v.digest,
      ...s,
      cost:
        Math.round(
          (missed * c.miss + s.benignDisrupted * c.disruption + s.totals.approvalsRequested * c.approval) *
            1000,
        ) / 1000,
      onFrontier: false,
    };
  });
  const frontier = paretoFrontier(results);
  for (const i of frontier) results[i]!.onFrontier = true;
  const { best, reason } = pick(results, objective);
  const rec = recommendedPolicy(input.policy, variants[best.index]!);
  const result: TuneResult = {
    policy: { id: input.policy.policy.id, version: input.policy.policy.version, digest: input.policy.digest },
    objective: objectiveLabel(objective),
    sweeps: sweeps.map((s) => s.spec),
    variants: results,
    frontier,
    recommended: {
      index: best.index,
      label: best.label,
      reason,
      policy: { id: rec.policy.id, version: rec.policy.version, digest: rec.digest },
    },
  };

  if (input.out) {
    mkdirSync(input.out, { recursive: true });
    const file = join(input.out, 'recommended-policy.yaml');
    writeFileSync(file, recommendedYaml(result, rec.policy, input.policy));
    result.recommended.file = file;
    writeFileSync(join(input.out, 'tune.json'), `${JSON.stringify(result, null, 2)}\n`);
  }
  if (input.onDetails) {
    history ??= await readHistory(input.history as string, { skipInvalid: Boolean(input.skipInvalid) });
    const details = replayWithDetails({ history, policy: rec, baseline: input.policy, ...replay });
    await input.onDetails(details, result);
  }
  return result;
}
