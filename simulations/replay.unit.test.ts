import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../schemas/events.ts';
import { loadDefaultPolicy, parsePolicy } from '../services/decider/policy/load.ts';
import { HistoryBuilder, type HistoryLine, historyFromLines, withoutRepeatedDetections } from './history.ts';
import { replayHistory } from './replay.ts';
import { buildReport, percentile, reportJson, reportJsonChunks } from './report.ts';
import { runReplay } from './run-replay.ts';
import { generateHistory } from './scenarios/index.ts';

const TINY_POLICY = `
id: tiny
version: "1"
defaults: { caseFloor: 0.3, approvalTtl: 4h, cooldown: 1h }
rules:
  - id: known-compromise
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder: [{ action: revoke_sessions, approval: auto }]
  - id: stolen-token
    when: { kinds: [anomalous_token_use, impossible_travel], minConfidence: 0.8, count: 2, window: 1h }
    identities: { types: [human] }
    ladder: [{ action: revoke_tokens, approval: auto }]
  - id: review
    when: { kinds: [credential_abuse], minConfidence: 0.5 }
    ladder: [{ action: revoke_sessions, approval: analyst }]
`;
const policy = parsePolicy(TINY_POLICY, 'tiny.yaml');
const defaultPolicy = loadDefaultPolicy();
const day = '2026-10-01';
const at = (hhmm: string) => `${day}T${hhmm}:00.000Z`;

const human = (name: string) => ({
  provider: 'okta',
  id: `${name}@acme.example`,
  type: 'human' as const,
  tenant: 'acme',
});
let seq = 0;
function det(name: string, hhmm: string, kind: string, confidence: number, source = 'okta'): HistoryLine {
  return {
    type: 'detection',
    id: `d${++seq}`,
    source,
    kind: kind as never,
    confidence,
    severity: 'high',
    identity: human(name),
    occurredAt: at(hhmm),
  };
}
const cat = (name: string): HistoryLine => ({
  type: 'identity',
  entry: { ...human(name), tier: 'production' },
});
const verdict = (name: string, hhmm: string, v: 'malicious' | 'benign'): HistoryLine => ({
  type: 'verdict',
  identity: { provider: 'okta', id: `${name}@acme.example` },
  verdict: v,
  at: at(hhmm),
  by: 'ana',
});

/**
 * A hand-made day under the tiny policy:
 * - alice (malicious): impossible travel 10:00, token use 10:10 (stolen-token: revoke_tokens,
 *   automatic) → contained after 600 s;
 * - bob (malicious): a low alert at 09:00 opens a case, known compromise at 09:30 revokes sessions
 *   automatically → contained after 1800 s;
 * - carol (malicious): credential abuse asks an analyst, who rejects → missed;
 * - dave (benign): two token alerts revoked automatically, then credential abuse asks an analyst;
 *   the benign verdict rolls the revocation back and withdraws the pending request;
 * - erin (benign): one low alert, no case, nothing done.
 */
function tinyDay(withRecordedAnswer = true): HistoryLine[] {
  seq = 0;
  return [
    cat('alice'),
    cat('bob'),
    cat('carol'),
    cat('dave'),
    cat('erin'),
    det('erin', '08:00', 'other', 0.2),
    det('bob', '09:00', 'other', 0.4),
    verdict('erin', '09:00', 'benign'),
    det('bob', '09:30', 'known_compromise', 0.95, 'crowdstrike'),
    det('alice', '10:00', 'impossible_travel', 0.9),
    det('alice', '10:10', 'anomalous_token_use', 0.9, 'entra'),
    det('carol', '11:00', 'credential_abuse', 0.6),
    ...(withRecordedAnswer
      ? [
          {
            type: 'approval',
            identity: { provider: 'okta', id: 'carol@acme.example' },
            decision: 'reject',
            by: 'ana',
            at: at('11:20'),
          } as HistoryLine,
        ]
      : []),
    verdict('alice', '12:00', 'malicious'),
    verdict('bob', '12:00', 'malicious'),
    det('dave', '13:00', 'anomalous_token_use', 0.85, 'splunk'),
    det('dave', '13:05', 'anomalous_token_use', 0.85, 'sentinel'),
    det('dave', '13:10', 'credential_abuse', 0.7),
    verdict('dave', '14:00', 'benign'),
    verdict('carol', '16:00', 'malicious'),
  ];
}

describe('replay metrics on a hand-made day', () => {
  it('counts, contains and times exactly', () => {
    const report = runReplay({ history: historyFromLines(tinyDay()), policy });
    expect(report.policy).toEqual({ id: 'tiny', version: '1', digest: policy.digest });
    expect(report.totals).toEqual({
      detections: 9,
      identities: 5,
      actionsProposed: 5,
      autoApproved: 3,
      approvalsRequested: 2,
      executed: 3,
      rolledBack: 1,
      guardTrips: 0,
      stormsDetected: 0,
      actionsShadowed: 0,
      identitiesUnresolved: 0,
      staleRouted: 0,
      approvalsExpired: 0,
      approvalsUnanswered: 0,
    });
    expect(report.metrics).toEqual({
      maliciousIdentities: 3,
      containedIdentities: 2,
      recall: 0.666667,
      benignIdentitiesActioned: { revoke_tokens: 1 },
      precision: 0.666667,
      f1: 0.666667,
      timeToContainSeconds: { p50: 600, p95: 1800, max: 1800 },
      approvalsPerDay: 2,
      approvalsPeakHour: 1,
      approvalDecisionsPeakHour: 1,
      approvalDecisionsPerDay: 2,
      benignActionedBy: { auto: 1, approved: 0, severity: { low: 1, medium: 0, high: 0 } },
    });
    const summary = report.actions.map((a) => [
      a.identity.id.split('@')[0],
      a.type,
      a.ruleId,
      a.approval.mode,
      a.approval.by,
      a.proposedAt,
      a.executedAt,
    ]);
    expect(summary).toEqual([
      ['bob', 'revoke_sessions', 'known-compromise', 'auto', 'policy', at('09:30'), at('09:30')],
      ['alice', 'revoke_tokens', 'stolen-token', 'auto', 'policy', at('10:10'), at('10:10')],
      ['carol', 'revoke_sessions', 'review', 'analyst', null, at('11:00'), null],
      ['dave', 'revoke_tokens', 'stolen-token', 'auto', 'policy', at('13:05'), at('13:05')],
      ['dave', 'revoke_sessions', 'review', 'analyst', null, at('13:10'), null],
    ]);
    expect(report.diff).toBeUndefined();
  });

  it('answers with the assumption when nothing was recorded, and delays execution', () => {
    const report = runReplay({
      history: historyFromLines(tinyDay(false)),
      policy,
      assumption: { latencySeconds: 900, rate: 1 },
      executionLatencySeconds: 60,
    });
    // carol's revocation is approved 15 min after proposal and executes a minute later.
    expect(report.metrics.containedIdentities).toBe(3);
    expect(report.metrics.recall).toBe(1);
    const carol = report.actions.find((a) => a.identity.id.startsWith('carol'))!;
    expect(carol.approval).toEqual({ mode: 'analyst', by: 'assumed' });
    expect(carol.executedAt).toBe(at('11:16'));
    // first executions: alice 10:11 (660 s), carol 11:16 (960 s), bob 09:31 (1860 s)
    expect(report.metrics.timeToContainSeconds).toEqual({ p50: 960, p95: 1860, max: 1860 });
    // dave: both actions ran before the benign verdict and are rolled back
    expect(report.totals.rolledBack).toBe(2);
    expect(report.metrics.benignIdentitiesActioned).toEqual({ revoke_sessions: 1, revoke_tokens: 1 });
  });

  it('draws assumed rejections deterministically per action', () => {
    const lines = [...generateHistory({ scenario: 'benign-noise', seed: 3, identities: 120, days: 7 })];
    const history = historyFromLines(lines.filter((l) => l.type !== 'approval'));
    const policy = defaultPolicy;
    const a = runReplay({ history, policy, assumption: { rate: 0.5, latencySeconds: 600, seed: 42 } });
    const b = runReplay({ history, policy, assumption: { rate: 0.5, latencySeconds: 600, seed: 42 } });
    expect(reportJson(a)).toBe(reportJson(b));
    const human = a.actions.filter((x) => x.approval.mode !== 'auto');
    const approved = human.filter((x) => x.approval.by !== null).length;
    expect(approved).toBeGreaterThan(0);
    expect(approved).toBeLessThan(human.length);
  });

  it('expires an unanswered approval at its deadline in virtual time', () => {
    const events: NewEvent[] = [];
    const lines = tinyDay(false).filter((l) => !(l.type === 'verdict' && l.identity.id.startsWith('carol')));
    lines.push(det('erin', '23:00', 'other', 0.1)); // a later input: the clock passes 15:00
    const run = replayHistory(historyFromLines(lines), policy, {
      approvals: 'recorded',
      onEvent: (e) => events.push(e),
    });
    const expired = events.filter((e) => e.type === 'ActionExpired');
    expect(expired).toHaveLength(1);
    expect(expired[0]!.occurredAt).toBe(at('15:00'));
    expect(run.actions.find((a) => a.identity.id.startsWith('carol'))!.status).toBe('expired');
  });

  it('diffs against a baseline by identity, action type and occurrence', () => {
    const strict = parsePolicy(
      JSON.stringify({
        ...policy.policy,
        version: 'strict',
        rules: policy.policy.rules.map((r) =>
          r.id === 'stolen-token' ? { ...r, when: { ...r.when, minConfidence: 0.88 } } : r,
        ),
      }),
    );
    const report = runReplay({ history: historyFromLines(tinyDay()), policy: strict, baseline: policy });
    expect(report.policy.version).toBe('strict');
    // dave's token alerts (0.85) no longer trigger stolen-token; alice's (0.9) still do. dave's review
    // request keeps its place (same identity, type and occurrence) though its id changes.
    expect(report.diff!.removed.map((a) => [a.identity.id, a.type])).toEqual([
      ['dave@acme.example', 'revoke_tokens'],
    ]);
    expect(report.diff!.added).toEqual([]);
    expect(report.diff!.changed).toEqual([]);
    expect(report.metrics.precision).toBe(1);
  });

  it('percentiles use the nearest rank', () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([5], 0.95)).toBe(5);
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3, 4], 0.95)).toBe(4);
  });
});

describe('replay determinism', () => {
  const policy = defaultPolicy;
  it('two replays of the same inputs give byte-identical JSON', () => {
    const lines = [...generateHistory({ scenario: 'mixed', seed: 11, identities: 300, days: 14 })];
    const first = reportJson(runReplay({ history: historyFromLines(lines), policy, baseline: policy }));
    const second = reportJson(
      runReplay({ history: historyFromLines(structuredClone(lines)), policy, baseline: policy }),
    );
    expect(second).toBe(first);
    expect(JSON.parse(first).actions.length).toBeGreaterThan(10);
    expect(Object.keys(JSON.parse(first))).toEqual(['policy', 'totals', 'metrics', 'actions', 'diff']);
  });

  it('streams the report in chunks that make exactly JSON.stringify of it, compact, with a newline', () => {
    const lines = [...generateHistory({ scenario: 'benign-noise', seed: 5, identities: 2000, days: 1 })];
    for (const report of [
      runReplay({ history: historyFromLines(lines), policy }),
      runReplay({ history: historyFromLines(lines), policy, baseline: policy }),
    ]) {
      const chunks = [...reportJsonChunks(report)];
      expect(chunks.join('')).toBe(`${JSON.stringify(report)}\n`);
      expect(reportJson(report)).toBe(chunks.join(''));
      // Large action lists arrive in several bounded pieces, not one string.
      expect(report.actions.length).toBeGreaterThan(100);
      expect(chunks.length).toBeGreaterThan(3);
    }
  });

  it('shuffled input lines with the same times give the same report', () => {
    const lines = [...generateHistory({ scenario: 'token-theft', seed: 5, identities: 40, days: 7 })];
    const catalogue = lines.filter((l) => l.type === 'identity');
    const rest = lines.filter((l) => l.type !== 'identity').reverse();
    const a = reportJson(runReplay({ history: historyFromLines(lines), policy }));
    const b = reportJson(runReplay({ history: historyFromLines([...catalogue, ...rest]), policy }));
    // Reversal changes only the order of inputs with equal times, which the generator never produces.
    expect(b).toBe(a);
  });

  it('a history without its re-deliveries replays to exactly the same events (what tune does once)', () => {
    const lines = [...generateHistory({ scenario: 'mixed', seed: 3, identities: 200, days: 10 })];
    const detections = lines.filter((l) => l.type === 'detection');
    // Re-deliveries: the same identity, source and id again, later and (for some) with other content,
    // plus the same id from another source and for another identity (not repeats).
    const extra: HistoryLine[] = [];
    for (let i = 0; i < detections.length; i += 7) {
      const d = detections[i]! as Extract<HistoryLine, { type: 'detection' }>;
      const later = new Date(Date.parse(d.at ?? d.occurredAt) + 600_000).toISOString();
      extra.push({ ...d, at: later, confidence: i % 2 ? 0.99 : d.confidence });
      if (i % 3 === 0) extra.push({ ...d, at: later, source: `${d.source}-mirror` });
      if (i % 5 === 0)
        extra.push({ ...d, at: later, identity: { ...d.identity, id: `${d.identity.id}-twin` } });
    }
    // Listed first but later in time: the copy replay decides first (merge order) is the one kept.
    const builder = new HistoryBuilder();
    for (const l of [...extra, ...lines]) builder.addValue(l);
    const history = builder.build(false);
    expect(history.repeatsRemoved).toBeUndefined();
    // Copies with other content, and the same id for another identity, are refused as conflicts
    // when the history is read (source + id is unique across the system), as the live API does.
    expect(history.conflictsRemoved).toBeGreaterThan(0);
    const events = (h: typeof history) => {
      const out: NewEvent[] = [];
      const run = replayHistory(h, policy, { onEvent: (e) => out.push(e) });
      return { out, report: reportJson(runReplay({ history: h, policy })), inputs: run.inputs };
    };
    const full = events(history);
    const lean = withoutRepeatedDetections(history);
    expect(lean.repeatsRemoved).toBeGreaterThan(detections.length / 16);
    expect(lean.records.length).toBe(history.records.length - lean.repeatsRemoved!);
    const trimmed = events(lean);
    expect(trimmed.out).toEqual(full.out);
    expect(trimmed.report).toBe(full.report);
    expect(trimmed.inputs).toBe(full.inputs);
    // The full run received each detection once: every re-delivery, whatever its content, was ignored.
    expect(full.out.filter((e) => e.type === 'DetectionReceived').length).toBe(
      history.records.filter((r) => r.type === 'detection').length - lean.repeatsRemoved!,
    );
  });
});

describe('replay with the providers’ capabilities', () => {
  it('replayed proposals and the report say what the provider can undo; an irreversible auto stage waits for an analyst', () => {
    const lines = [cat('ivy'), det('ivy', '09:00', 'known_compromise', 0.95)];
    const caps = {
      okta: {
        type: 'aws',
        actions: { revoke_sessions: { reversibility: 'irreversible' as const, residue: ['x'] } },
      },
    };
    const run = replayHistory(historyFromLines(lines), policy, { capabilities: caps });
    expect(run.actions).toEqual([
      expect.objectContaining({ type: 'revoke_sessions', mode: 'analyst', reversibility: 'irreversible' }),
    ]);
    expect(buildReport(run).actions[0]!.reversibility).toBe('irreversible');
    const without = replayHistory(historyFromLines(lines), policy);
    expect(without.actions).toEqual([expect.objectContaining({ type: 'revoke_sessions', mode: 'auto' })]);
    expect(without.actions[0]!.reversibility).toBeUndefined();
  });
});
