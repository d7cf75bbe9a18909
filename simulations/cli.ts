import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TourniquetError } from '../platform/errors.ts';
import { SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import type { ProviderCapabilities } from '../schemas/capabilities.ts';
import { parseDuration } from '../services/decider/policy/duration.ts';
import { type LoadedPolicy, loadPolicyFile } from '../services/decider/policy/load.ts';
import {
  exportHistory,
  type HistoryIssue,
  readHistory,
  storeHistoryLines,
  writeHistoryLines,
} from './history.ts';
import { humanSeconds, renderReplayHtml, renderTuneHtml } from './html.ts';
import { type Out, progressLine } from './progress.ts';
import type { ApprovalAssumption, ReplayOptions } from './replay.ts';
import { type ReplayReport, reportJsonChunks } from './report.ts';
import { type ReplayDetails, replayWithDetails } from './run-replay.ts';
import { generateHistory, SCENARIO_NAMES } from './scenarios/index.ts';
import { runTune } from './tune.ts';

/**
 * Entry points for `tourniquet replay | tune | simulate | history export`. Each returns an exit
 * code: 0 done, 1 bad input (with a one-line reason on stderr). Unexpected failures propagate.
 */

export interface ReplayCliOptions {
  history: string;
  policy: string;
  baseline?: string;
  out?: string;
  json?: boolean;
  skipInvalid?: boolean;
  /** Assumed human answer latency, e.g. "15m"; with --approval-rate, answers what no recorded decision covers. */
  approvalLatency?: string;
  approvalRate?: number | string;
  /** Simulated executor latency, e.g. "30s" (default 0). */
  executionLatency?: string;
  /** What the providers can undo (from a providers file): proposals and the report carry it. */
  capabilities?: ProviderCapabilities;
  stdout: Out;
  stderr: Out;
}

export interface TuneCliOptions {
  history: string;
  policy: string;
  sweep: string[];
  objective?: string;
  workers?: number | string;
  out?: string;
  json?: boolean;
  skipInvalid?: boolean;
  approvalLatency?: string;
  approvalRate?: number | string;
  stdout: Out;
  stderr: Out;
}

export interface SimulateCliOptions {
  scenario: string;
  seed: number | string;
  identities: number | string;
  days: number | string;
  /** NDJSON file to write, or "-" for stdout. */
  out: string;
  /** Start of the simulated period (default 2026-10-01T00:00:00Z). */
  start?: string;
  noise?: number | string;
  stdout: Out;
  stderr: Out;
}

export interface HistoryExportCliOptions {
  /** Data directory of the embedded store (events.db inside it). */
  dataDir?: string;
  /** Or the SQLite file itself. */
  storePath?: string;
  /** NDJSON file to write, or "-" for stdout. */
  out: string;
  stdout: Out;
  stderr: Out;
}

function fail(stderr: Out, err: unknown): number {
  if (err instanceof TourniquetError) {
    stderr.write(`tourniquet: ${err.code}: ${err.message}\n`);
    return 1;
  }
  throw err;
}

function badInput(message: string): TourniquetError {
  return new TourniquetError('VALIDATION_FAILED', message, { status: 400 });
}

function toNumber(name: string, v: number | string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) throw badInput(`--${name} must be a number, got "${v}"`);
  return n;
}

function toInt(name: string, v: number | string | undefined): number | undefined {
  const n = toNumber(name, v);
  if (n !== undefined && !Number.isInteger(n)) throw badInput(`--${name} must be an integer, got "${v}"`);
  return n;
}

function seconds(name: string, text: string): number {
  try {
    return parseDuration(text.trim());
  } catch (err) {
    throw badInput(`--${name}: ${(err as Error).message}`);
  }
}

/** Replay options from the approval and execution flags. */
function replayOptions(o: {
  approvalLatency?: string;
  approvalRate?: number | string;
  executionLatency?: string;
}): ReplayOptions {
  const opts: ReplayOptions = {};
  const rate = toNumber('approval-rate', o.approvalRate);
  if (rate !== undefined && !(rate >= 0 && rate <= 1))
    throw badInput(`--approval-rate must be between 0 and 1, got ${rate}`);
  if (o.approvalLatency !== undefined || rate !== undefined) {
    const assumption: Partial<ApprovalAssumption> = {};
    if (o.approvalLatency !== undefined)
      assumption.latencySeconds = seconds('approval-latency', o.approvalLatency);
    if (rate !== undefined) assumption.rate = rate;
    opts.approvals = 'both';
    opts.assumption = assumption;
  }
  if (o.executionLatency !== undefined)
    opts.executionLatencySeconds = seconds('execution-latency', o.executionLatency);
  return opts;
}

function loadPolicy(path: string): LoadedPolicy {
  return loadPolicyFile(resolve(path));
}

async function loadHistory(path: string, skipInvalid: boolean, stderr: Out) {
  const shown: HistoryIssue[] = [];
  const progress = progressLine(stderr, 'read  ', 'bytes');
  const history = await readHistory(resolve(path), {
    skipInvalid,
    onProgress: progress.update,
    onInvalid: (issue) => {
      if (shown.length < 10) {
        shown.push(issue);
        progress.done();
        stderr.write(`tourniquet: skipped ${issue.message}\n`);
      }
    },
  });
  progress.done();
  if (history.invalid > 0)
    stderr.write(`tourniquet: skipped ${history.invalid} invalid line(s) of ${history.lines}\n`);
  if (history.records.length === 0)
    throw new TourniquetError('HISTORY_INVALID', `history ${path} has no records`, { status: 400 });
  return history;
}

/** Streams the JSON report to a file, waiting for the disk when it falls behind; fails as the write fails. */
async function writeReportJson(path: string, report: ReplayReport): Promise<void> {
  const file = createWriteStream(path, { encoding: 'utf8' });
  const failed = once(file, 'error').then(([err]) => {
    throw err;
  });
  failed.catch(() => undefined); // raced below; an unobserved rejection must not end the process
  for (const chunk of reportJsonChunks(report)) {
    if (!file.write(chunk)) await Promise.race([once(file, 'drain'), failed]);
  }
  file.end();
  await Promise.race([once(file, 'finish'), failed]);
}

async function writeReports(dir: string, details: ReplayDetails): Promise<{ json: string; html: string }> {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  await writeReportJson(json, details.report);
  writeFileSync(html, renderReplayHtml(details));
  return { json, html };
}

function summaryText(details: ReplayDetails): string {
  const { report, run, summary } = details;
  const t = report.totals;
  const m = report.metrics;
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const benign = Object.entries(m.benignIdentitiesActioned)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lines = [
    `policy    ${report.policy.id} ${report.policy.version} (${report.policy.digest})`,
    `history   ${run.inputs} records, ${t.detections} detections, ${t.identities} identities, ${day(run.startMs)} → ${day(run.endMs)}${run.conflicts ? `; ${run.conflicts} conflicting duplicates refused (source + id taken by another identity or other content)` : ''}`,
    `actions   ${t.actionsProposed} proposed, ${t.autoApproved} auto-approved, ${t.approvalsRequested} approvals requested (${m.approvalsPerDay}/day), ${t.executed} executed, ${t.rolledBack} rolled back, ${t.guardTrips} guard trips`,
    `load      ${m.approvalsPeakHour} approvals in the busiest hour, ${m.approvalDecisionsPeakHour} grouped decisions in the busiest hour (${m.approvalDecisionsPerDay}/day), ${t.approvalsExpired} expired, ${t.approvalsUnanswered} unanswered`,
    `held      ${t.stormsDetected} storms detected, ${t.staleRouted} stale detections routed to an analyst, ${t.actionsShadowed} actions shadowed by rules in monitor mode`,
    `approvals ${run.approvalSource}${run.unmatchedApprovals ? `, ${run.unmatchedApprovals} recorded answers matched nothing pending` : ''}${run.assumedAnswers ? `, ${run.assumedAnswers} assumed answers` : ''}`,
    `truth     ${m.maliciousIdentities} malicious identities, ${m.containedIdentities} contained: recall ${m.recall}, precision ${m.precision}, f1 ${m.f1}`,
    `benign    ${summary.benignDisrupted} benign identities actioned${benign ? ` (${benign})` : ''}: ${m.benignActionedBy.auto} automatically, ${m.benignActionedBy.approved} approved; severity low ${m.benignActionedBy.severity.low}, medium ${m.benignActionedBy.severity.medium}, high ${m.benignActionedBy.severity.high}`,
    `contain   p50 ${humanSeconds(m.timeToContainSeconds.p50)}, p95 ${humanSeconds(m.timeToContainSeconds.p95)}, max ${humanSeconds(m.timeToContainSeconds.max)}`,
  ];
  if (report.diff)
    lines.push(
      `diff      +${report.diff.added.length} added, -${report.diff.removed.length} removed, ${report.diff.changed.length} changed (vs baseline)`,
    );
  return `${lines.join('\n')}\n`;
}

/** `tourniquet replay --history H --policy P [--baseline P0] [--out DIR] [--json]` */
export async function runReplayCli(opts: ReplayCliOptions): Promise<number> {
  try {
    const policy = loadPolicy(opts.policy);
    const baseline = opts.baseline ? loadPolicy(opts.baseline) : undefined;
    const replay = replayOptions(opts);
    if (opts.capabilities) replay.capabilities = opts.capabilities;
    const history = await loadHistory(opts.history, Boolean(opts.skipInvalid), opts.stderr);
    const progress = progressLine(opts.stderr, 'replay');
    const details = replayWithDetails({
      history,
      policy,
      ...(baseline ? { baseline } : {}),
      ...replay,
      onProgress: progress.update,
    });
    progress.done();
    let files: { json: string; html: string } | undefined;
    if (opts.out) files = await writeReports(resolve(opts.out), details);
    if (opts.json) {
      for (const chunk of reportJsonChunks(details.report)) opts.stdout.write(chunk);
    } else {
      opts.stdout.write(summaryText(details));
      if (files) opts.stdout.write(`report    ${files.html}\n          ${files.json}\n`);
    }
    return 0;
  } catch (err) {
    return fail(opts.stderr, err);
  }
}

/** `tourniquet tune --history H --policy P --sweep PATH=FROM..TO:STEP … [--objective O] [--workers N] [--out DIR] [--json]` */
export async function runTuneCli(opts: TuneCliOptions): Promise<number> {
  try {
    const policy = loadPolicy(opts.policy);
    const replay = replayOptions(opts);
    const workers = toInt('workers', opts.workers);
    if (!opts.sweep || opts.sweep.length === 0)
      throw badInput('at least one --sweep PATH=FROM..TO:STEP is needed');
    const historyPath = resolve(opts.history);
    if (!existsSync(historyPath))
      throw new TourniquetError('HISTORY_INVALID', `history file not found: ${opts.history}`, {
        status: 400,
      });
    const progress = progressLine(opts.stderr, 'tune', 'variants');
    const out = opts.out ? resolve(opts.out) : undefined;
    let reportFiles: { json: string; html: string } | undefined;
    const result = await runTune({
      history: historyPath,
      policy,
      sweeps: opts.sweep,
      objective: opts.objective ?? 'f1',
      ...(workers !== undefined ? { workers } : {}),
      ...(out ? { out } : {}),
      skipInvalid: Boolean(opts.skipInvalid),
      replay,
      onProgress: progress.update,
      ...(out
        ? {
            onDetails: async (details, r) => {
              reportFiles = await writeReports(out, details);
              writeFileSync(reportFiles.html, renderTuneHtml(r, details));
            },
          }
        : {}),
    });
    progress.done();
    if (opts.json) {
      opts.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    }
    const rec = result.variants[result.recommended.index]!;
    const lines = [
      `${result.variants.length} variants of ${result.policy.id} ${result.policy.version}, objective ${result.objective}`,
      `frontier (recall ↑, benign disrupted ↓, approvals/day ↓):`,
      ...result.frontier.map((i) => {
        const v = result.variants[i]!;
        return `  #${String(i).padEnd(4)} recall ${v.metrics.recall.toFixed(3)}  precision ${v.metrics.precision.toFixed(3)}  benign ${String(v.benignDisrupted).padStart(4)}  approvals/day ${v.metrics.approvalsPerDay.toFixed(2).padStart(7)}  ${v.label}`;
      }),
      `recommended #${rec.index} ${rec.label}: ${result.recommended.reason}`,
    ];
    if (result.recommended.file) lines.push(`policy    ${result.recommended.file}`);
    if (reportFiles) lines.push(`report    ${reportFiles.html}`, `          ${reportFiles.json}`);
    opts.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    return fail(opts.stderr, err);
  }
}

/** `tourniquet simulate --scenario NAME --seed N --identities N --days N --out FILE` */
export async function runSimulateCli(opts: SimulateCliOptions): Promise<number> {
  try {
    if (!SCENARIO_NAMES.includes(opts.scenario)) {
      throw badInput(`unknown scenario "${opts.scenario}" (one of ${SCENARIO_NAMES.join(', ')})`);
    }
    const seed = toInt('seed', opts.seed) ?? 1;
    const identities = toInt('identities', opts.identities) ?? 1000;
    const days = toInt('days', opts.days) ?? 30;
    const noise = toNumber('noise', opts.noise);
    if (noise !== undefined && noise < 0) throw badInput('--noise must not be negative');
    const lines = generateHistory({
      scenario: opts.scenario,
      seed,
      identities,
      days,
      ...(opts.start ? { start: opts.start } : {}),
      ...(noise !== undefined ? { noisePerIdentityDay: noise } : {}),
    });
    const counts = { lines: 0, detection: 0, identity: 0, approval: 0, malicious: 0, benign: 0 };
    const counted = function* () {
      for (const l of lines) {
        counts.lines++;
        if (l.type === 'verdict') counts[l.verdict]++;
        else counts[l.type]++;
        yield l;
      }
    };
    if (opts.out === '-') {
      let buffer = '';
      for (const l of counted()) {
        buffer += `${JSON.stringify(l)}\n`;
        if (buffer.length > 1 << 16) {
          opts.stdout.write(buffer);
          buffer = '';
        }
      }
      if (buffer) opts.stdout.write(buffer);
    } else {
      await writeHistoryLines(counted(), resolve(opts.out));
    }
    const where = opts.out === '-' ? 'stdout' : opts.out;
    opts.stderr.write(
      `simulated ${opts.scenario} (seed ${seed}, ${identities} identities, ${days} days): ${counts.lines} lines to ${where}: ` +
        `${counts.identity} catalogue entries, ${counts.detection} detections, ${counts.approval} recorded answers, ` +
        `${counts.malicious} malicious and ${counts.benign} benign verdicts\n`,
    );
    return 0;
  } catch (err) {
    return fail(opts.stderr, err);
  }
}

/** `tourniquet history export --data-dir DIR --out FILE`: a store's history as NDJSON. */
export async function runHistoryExportCli(opts: HistoryExportCliOptions): Promise<number> {
  try {
    const path = opts.storePath
      ? resolve(opts.storePath)
      : join(resolve(opts.dataDir ?? '.tourniquet'), 'events.db');
    if (!existsSync(path))
      throw new TourniquetError('NOT_FOUND', `no event store at ${path} (use --data-dir)`, { status: 404 });
    const store = new SqliteEventStore({ path });
    try {
      let lines = 0;
      if (opts.out === '-') {
        let buffer = '';
        for await (const line of storeHistoryLines(store)) {
          buffer += `${JSON.stringify(line)}\n`;
          lines++;
          if (buffer.length > 1 << 16) {
            opts.stdout.write(buffer);
            buffer = '';
          }
        }
        if (buffer) opts.stdout.write(buffer);
      } else {
        lines = (await exportHistory(store, resolve(opts.out))).lines;
      }
      opts.stderr.write(
        `exported ${lines} history lines from ${path} to ${opts.out === '-' ? 'stdout' : opts.out}\n`,
      );
      return 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    return fail(opts.stderr, err);
  }
}
