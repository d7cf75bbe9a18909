import type { ReplayRun, SimAction } from './replay.ts';

/**
 * The replay report: one JSON document, deterministic (fixed key order, sorted lists, rounded
 * ratios), so two replays of the same inputs give byte-identical output.
 */

export interface ReportAction {
  id: string;
  type: string;
  stage: number;
  identity: { provider: string; id: string };
  ruleId: string;
  approval: { mode: string; by: string | null };
  proposedAt: string;
  executedAt: string | null;
}

interface ActionChange {
  id: string;
  fields: string[];
  before: ReportAction;
  after: ReportAction;
}

interface ReportDiff {
  added: ReportAction[];
  removed: ReportAction[];
  changed: ActionChange[];
}

export interface ReportTotals {
  detections: number;
  identities: number;
  actionsProposed: number;
  autoApproved: number;
  approvalsRequested: number;
  executed: number;
  rolledBack: number;
  guardTrips: number;
}

export interface ReportMetrics {
  maliciousIdentities: number;
  containedIdentities: number;
  recall: number;
  /** Distinct benign identities with an executed action, per action type. */
  benignIdentitiesActioned: Record<string, number>;
  precision: number;
  f1: number;
  timeToContainSeconds: { p50: number | null; p95: number | null; max: number | null };
  approvalsPerDay: number;
}

export interface ReplayReport {
  policy: { id: string; version: string; digest: string };
  totals: ReportTotals;
  metrics: ReportMetrics;
  actions: ReportAction[];
  diff?: ReportDiff;
}

/** Per-rule breakdown for the HTML report. */
export interface RuleRow {
  ruleId: string;
  proposed: number;
  auto: number;
  approvalsRequested: number;
  executed: number;
  rolledBack: number;
  maliciousContained: number;
  benignActioned: number;
}

/** Scalars beyond the report that tuning and the HTML need. */
export interface RunSummary {
  totals: ReportTotals;
  metrics: ReportMetrics;
  /** Distinct benign identities with any executed action (the disruption axis of the frontier). */
  benignDisrupted: number;
  /** Seconds from first detection to first executed action, per contained malicious identity, ascending. */
  timeToContain: number[];
  rules: RuleRow[];
}

const round = (x: number, digits = 6) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

const iso = (ms: number) => new Date(ms).toISOString();

/** Nearest-rank percentile of an ascending list; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1]!;
}

const executed = (a: SimAction) => a.executedAtMs !== null;

export function summarize(run: ReplayRun): RunSummary {
  let autoApproved = 0;
  let approvalsRequested = 0;
  let nExecuted = 0;
  let rolledBack = 0;
  const firstExec = new Map<string, number>();
  const benignByType = new Map<string, Set<string>>();
  const benignAny = new Set<string>();
  const rules = new Map<string, RuleRow & { mal: Set<string>; ben: Set<string> }>();
  for (const a of run.actions) {
    let row = rules.get(a.ruleId);
    if (!row) {
      row = {
        ruleId: a.ruleId,
        proposed: 0,
        auto: 0,
        approvalsRequested: 0,
        executed: 0,
        rolledBack: 0,
        maliciousContained: 0,
        benignActioned: 0,
        mal: new Set(),
        ben: new Set(),
      };
      rules.set(a.ruleId, row);
    }
    row.proposed++;
    if (a.mode === 'auto') {
      autoApproved++;
      row.auto++;
    } else {
      approvalsRequested++;
      row.approvalsRequested++;
    }
    if (!executed(a)) continue;
    nExecuted++;
    row.executed++;
    if (a.rolledBackAtMs !== null) {
      rolledBack++;
      row.rolledBack++;
    }
    const prev = firstExec.get(a.identityKey);
    if (prev === undefined || a.executedAtMs! < prev) firstExec.set(a.identityKey, a.executedAtMs!);
    const verdict = run.truth.get(a.identityKey);
    if (verdict === 'malicious') row.mal.add(a.identityKey);
    else if (verdict === 'benign') {
      row.ben.add(a.identityKey);
      benignAny.add(a.identityKey);
      let set = benignByType.get(a.type);
      if (!set) {
        set = new Set();
        benignByType.set(a.type, set);
      }
      set.add(a.identityKey);
    }
  }
  let malicious = 0;
  let contained = 0;
  const ttc: number[] = [];
  for (const [key, verdict] of run.truth) {
    if (verdict !== 'malicious') continue;
    malicious++;
    const exec = firstExec.get(key);
    if (exec === undefined) continue;
    contained++;
    const first = run.firstDetectionMs.get(key) ?? exec;
    ttc.push(Math.max(0, (exec - first) / 1000));
  }
  ttc.sort((a, b) => a - b);
  const recall = malicious === 0 ? 1 : contained / malicious;
  const precision = contained + benignAny.size === 0 ? 1 : contained / (contained + benignAny.size);
  const f1 = recall + precision === 0 ? 0 : (2 * recall * precision) / (recall + precision);
  const spanDays = Math.max(1, (run.endMs - run.startMs) / 86_400_000);
  const benignIdentitiesActioned: Record<string, number> = {};
  for (const type of [...benignByType.keys()].sort())
    benignIdentitiesActioned[type] = benignByType.get(type)!.size;
  return {
    totals: {
      detections: run.detections,
      identities: run.firstDetectionMs.size,
      actionsProposed: run.actions.length,
      autoApproved,
      approvalsRequested,
      executed: nExecuted,
      rolledBack,
      guardTrips: run.guardTrips,
    },
    metrics: {
      maliciousIdentities: malicious,
      containedIdentities: contained,
      recall: round(recall),
      benignIdentitiesActioned,
      precision: round(precision),
      f1: round(f1),
      timeToContainSeconds: {
        p50: percentile(ttc, 0.5),
        p95: percentile(ttc, 0.95),
        max: ttc.length ? ttc[ttc.length - 1]! : null,
      },
      approvalsPerDay: round(approvalsRequested / spanDays, 4),
    },
    benignDisrupted: benignAny.size,
    timeToContain: ttc,
    rules: [...rules.values()]
      .sort((a, b) => (a.ruleId < b.ruleId ? -1 : a.ruleId > b.ruleId ? 1 : 0))
      .map(({ mal, ben, ...row }) => ({ ...row, maliciousContained: mal.size, benignActioned: ben.size })),
  };
}

function reportAction(a: SimAction): ReportAction {
  return {
    id: a.id,
    type: a.type,
    stage: a.stage,
    identity: { provider: a.identity.provider, id: a.identity.id },
    ruleId: a.ruleId,
    approval: { mode: a.mode, by: a.status === 'approved' ? a.approvers.join(',') : null },
    proposedAt: iso(a.proposedAtMs),
    executedAt: a.executedAtMs === null ? null : iso(a.executedAtMs),
  };
}

/**
 * Actions matched across two policies by identity, action type and occurrence (ids may differ when
 * case numbering differs): added, removed, and changed in stage, rule, approval or timing.
 */
function diffActions(baseline: readonly ReportAction[], current: readonly ReportAction[]): ReportDiff {
  const keyed = (list: readonly ReportAction[]) => {
    const seen = new Map<string, number>();
    const out = new Map<string, ReportAction>();
    for (const a of list) {
      const base = `${a.identity.provider}:${a.identity.id}|${a.type}`;
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      out.set(`${base}|${n}`, a);
    }
    return out;
  };
  const before = keyed(baseline);
  const after = keyed(current);
  const added: ReportAction[] = [];
  const removed: ReportAction[] = [];
  const changed: ActionChange[] = [];
  for (const [key, a] of after) {
    const b = before.get(key);
    if (!b) {
      added.push(a);
      continue;
    }
    const fields: string[] = [];
    if (a.stage !== b.stage) fields.push('stage');
    if (a.ruleId !== b.ruleId) fields.push('ruleId');
    if (a.approval.mode !== b.approval.mode) fields.push('approval.mode');
    if (a.approval.by !== b.approval.by) fields.push('approval.by');
    if (a.proposedAt !== b.proposedAt) fields.push('proposedAt');
    if (a.executedAt !== b.executedAt) fields.push('executedAt');
    if (fields.length > 0) changed.push({ id: a.id, fields, before: b, after: a });
  }
  for (const [key, b] of before) if (!after.has(key)) removed.push(b);
  const byTime = (x: ReportAction, y: ReportAction) =>
    x.proposedAt < y.proposedAt
      ? -1
      : x.proposedAt > y.proposedAt
        ? 1
        : x.id < y.id
          ? -1
          : x.id > y.id
            ? 1
            : 0;
  added.sort(byTime);
  removed.sort(byTime);
  changed.sort((x, y) => byTime(x.after, y.after));
  return { added, removed, changed };
}

export function buildReport(
  run: ReplayRun,
  baseline?: ReplayRun,
  summary: RunSummary = summarize(run),
): ReplayReport {
  const actions = run.actions.map(reportAction);
  const report: ReplayReport = {
    policy: { ...run.policy },
    totals: summary.totals,
    metrics: summary.metrics,
    actions,
  };
  if (baseline) report.diff = diffActions(baseline.actions.map(reportAction), actions);
  return report;
}

/** The report as text: stable key order (as built), two-space indent, trailing newline. */
export function reportJson(report: ReplayReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
