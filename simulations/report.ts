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
  /** What the acting provider can undo of it (replayed with --providers). */
  reversibility?: string;
  /** The approval group a human decided it in (storm, rule or case); absent for automatic actions. */
  group?: string;
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
  /** StormDetected: rules held for firing on many identities at once. */
  stormsDetected: number;
  /** What rules in monitor mode would have proposed (ActionShadowed): never executed nor asked. */
  actionsShadowed: number;
  /** Detection identities neither catalogued nor an alias of a catalogued one (decided as they are). */
  identitiesUnresolved: number;
  /** Actions routed to a human because their detection was stale. */
  staleRouted: number;
  /** Approval requests that expired unanswered, and those still unanswered when the history ends. */
  approvalsExpired: number;
  approvalsUnanswered: number;
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
  /** Approval requests in the busiest clock hour. */
  approvalsPeakHour: number;
  /**
   * Decisions a human makes when approvals sharing a group (storm, rule, case) are decided together:
   * distinct groups with a request in each clock hour; the busiest hour, and per day.
   */
  approvalDecisionsPeakHour: number;
  approvalDecisionsPerDay: number;
  /** Distinct benign identities with an executed action: automatic vs human-approved, and by action severity. */
  benignActionedBy: { auto: number; approved: number; severity: Record<ActionSeverity, number> };
}

type ActionSeverity = 'low' | 'medium' | 'high';

/** How disruptive an action is for a benign identity: narrow and self-healing, costly, or outage. */
const ACTION_SEVERITY: Record<string, ActionSeverity> = {
  revoke_sessions: 'low',
  revoke_tokens: 'low',
  force_step_up: 'low',
  rotate_credential: 'medium',
  revoke_oauth_grant: 'medium',
  quarantine: 'medium',
  jit_reissue: 'medium',
  disable_account: 'high',
  disable_service_account: 'high',
};

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
  /** Of this rule's contained or actioned identities, how many another rule counts too. */
  sharedIdentities: number;
}

/**
 * What the rule rows add up to. Action counts add up to the totals exactly (each action has one
 * rule); identity counts do not when an identity is counted under two rules, so the distinct counts
 * and how many identities sit under several rules are given beside them.
 */
interface RuleTotals {
  maliciousContained: number;
  benignActioned: number;
  identitiesUnderSeveralRules: number;
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
  ruleTotals: RuleTotals;
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
  const approvals = approvalLoad(run.actions);
  const benignAuto = new Set<string>();
  const benignApproved = new Set<string>();
  const benignSeverity: Record<ActionSeverity, Set<string>> = {
    low: new Set(),
    medium: new Set(),
    high: new Set(),
  };
  let staleRouted = 0;
  for (const a of run.actions) {
    if (a.mode !== 'auto' && a.guards.includes('stale')) staleRouted++;
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
        sharedIdentities: 0,
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
      (a.mode === 'auto' ? benignAuto : benignApproved).add(a.identityKey);
      benignSeverity[ACTION_SEVERITY[a.type] ?? 'medium'].add(a.identityKey);
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
      stormsDetected: run.storms,
      actionsShadowed: run.shadowed,
      identitiesUnresolved: run.unresolvedIdentities,
      staleRouted,
      approvalsExpired: approvals.expired,
      approvalsUnanswered: approvals.unanswered,
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
      approvalsPeakHour: approvals.peakHour,
      approvalDecisionsPeakHour: approvals.decisionsPeakHour,
      approvalDecisionsPerDay: round(approvals.decisions / spanDays, 4),
      benignActionedBy: {
        auto: benignAuto.size,
        approved: benignApproved.size,
        severity: {
          low: benignSeverity.low.size,
          medium: benignSeverity.medium.size,
          high: benignSeverity.high.size,
        },
      },
    },
    benignDisrupted: benignAny.size,
    timeToContain: ttc,
    ...ruleRows(rules.values()),
  };
}

/** The per-rule rows, each saying how many of its identities another rule counts too, and their totals. */
function ruleRows(rows: Iterable<RuleRow & { mal: Set<string>; ben: Set<string> }>) {
  const list = [...rows].sort((a, b) => (a.ruleId < b.ruleId ? -1 : a.ruleId > b.ruleId ? 1 : 0));
  const rulesOf = new Map<string, number>();
  for (const r of list)
    for (const id of new Set([...r.mal, ...r.ben])) rulesOf.set(id, (rulesOf.get(id) ?? 0) + 1);
  const mal = new Set<string>();
  const ben = new Set<string>();
  const result = list.map(({ mal: m, ben: b, ...row }) => {
    for (const id of m) mal.add(id);
    for (const id of b) ben.add(id);
    let shared = 0;
    for (const id of new Set([...m, ...b])) if (rulesOf.get(id)! > 1) shared++;
    return { ...row, maliciousContained: m.size, benignActioned: b.size, sharedIdentities: shared };
  });
  let several = 0;
  for (const n of rulesOf.values()) if (n > 1) several++;
  return {
    rules: result,
    ruleTotals: {
      maliciousContained: mal.size,
      benignActioned: ben.size,
      identitiesUnderSeveralRules: several,
    },
  };
}

const HOUR_MS = 3_600_000;

/** Approval requests per clock hour, and the grouped decisions (distinct groups per hour) they make. */
function approvalLoad(actions: readonly SimAction[]) {
  const perHour = new Map<number, { requests: number; groups: Set<string> }>();
  let expired = 0;
  let unanswered = 0;
  for (const a of actions) {
    if (a.mode === 'auto' || a.mode === 'never') continue;
    if (a.status === 'expired') expired++;
    else if (a.status === 'pending') unanswered++;
    const hour = Math.floor(a.proposedAtMs / HOUR_MS);
    let h = perHour.get(hour);
    if (!h) {
      h = { requests: 0, groups: new Set() };
      perHour.set(hour, h);
    }
    h.requests++;
    h.groups.add(a.group ?? a.id);
  }
  let peakHour = 0;
  let decisionsPeakHour = 0;
  let decisions = 0;
  for (const h of perHour.values()) {
    peakHour = Math.max(peakHour, h.requests);
    decisionsPeakHour = Math.max(decisionsPeakHour, h.groups.size);
    decisions += h.groups.size;
  }
  return { expired, unanswered, peakHour, decisionsPeakHour, decisions };
}

function reportAction(a: SimAction): ReportAction {
  return {
    id: a.id,
    type: a.type,
    stage: a.stage,
    // Shared with the identity's other actions (replay keeps one {provider, id} per identity).
    identity: a.identity,
    ruleId: a.ruleId,
    approval: { mode: a.mode, by: a.status === 'approved' ? a.approvers.join(',') : null },
    proposedAt: iso(a.proposedAtMs),
    executedAt: a.executedAtMs === null ? null : iso(a.executedAtMs),
    ...(a.reversibility ? { reversibility: a.reversibility } : {}),
    ...(a.group ? { group: a.group } : {}),
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

/** A JSON array written piece by piece: at most ~64 KiB of text per chunk. */
function* arrayChunks(list: readonly unknown[]): Generator<string> {
  let buffer = '[';
  for (let i = 0; i < list.length; i++) {
    buffer += (i === 0 ? '' : ',') + JSON.stringify(list[i]);
    if (buffer.length >= 1 << 16) {
      yield buffer;
      buffer = '';
    }
  }
  yield `${buffer}]`;
}

/**
 * The report as compact JSON text in chunks, byte for byte `JSON.stringify(report)` plus a newline:
 * a report of a few hundred thousand actions is written to a file or a pipe as it is produced,
 * never held as one string (nor indented: two-space indent made such reports about twice the size).
 */
export function* reportJsonChunks(report: ReplayReport): Generator<string> {
  const { policy, totals, metrics, actions, diff } = report;
  yield `{"policy":${JSON.stringify(policy)},"totals":${JSON.stringify(totals)},"metrics":${JSON.stringify(metrics)},"actions":`;
  yield* arrayChunks(actions);
  if (diff) {
    yield ',"diff":{"added":';
    yield* arrayChunks(diff.added);
    yield ',"removed":';
    yield* arrayChunks(diff.removed);
    yield ',"changed":';
    yield* arrayChunks(diff.changed);
    yield '}';
  }
  yield '}\n';
}

/** The report as one string (compact, stable key order as built, trailing newline): see reportJsonChunks. */
export function reportJson(report: ReplayReport): string {
  let text = '';
  for (const chunk of reportJsonChunks(report)) text += chunk;
  return text;
}
