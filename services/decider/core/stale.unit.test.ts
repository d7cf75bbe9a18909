/**
 * The staleness guard at its boundary: a detection received exactly at the limit after it occurred
 * may still act automatically; one millisecond later it is stale and goes to an analyst. Live (the
 * core with the decision time of receipt) and in replay (the history line's receipt time `at`).
 */
import { describe, expect, it } from 'vitest';
import { type HistoryLine, historyFromLines } from '../../../simulations/history.ts';
import { replayHistory } from '../../../simulations/replay.ts';
import { autoApprovals, HOUR, iso, proposals, Scenario } from '../../../test/support/decider-testkit.ts';
import { loadDefaultPolicy } from '../policy/load.ts';

const LIMIT_MS = HOUR; // the default policy's staleAfter

describe('stale detections, live', () => {
  it('a known compromise received exactly 1 h after it occurred still revokes sessions automatically', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const events = s.detect('ann', 'known_compromise', 0.97, { occurredAtMs: s.nowMs - LIMIT_MS });
    expect(proposals(events)).toMatchObject([{ action: 'revoke_sessions', approval: { mode: 'auto' } }]);
    expect(proposals(events)[0]!.guards).toEqual([]);
    expect(autoApprovals(events)).toHaveLength(1);
  });

  it('received 1 h and 1 ms after it occurred, it is stale: routed to an analyst with the reason, nothing automatic', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const events = s.detect('ann', 'known_compromise', 0.97, { occurredAtMs: s.nowMs - LIMIT_MS - 1 });
    const [p] = proposals(events);
    expect(p).toMatchObject({ action: 'revoke_sessions', approval: { mode: 'analyst' } });
    expect(p!.guards).toEqual([
      {
        guard: 'stale',
        effect: 'approval auto -> analyst',
        reason: 'detection received 3600s after it occurred (limit 3600s)',
      },
    ]);
    expect(p!.approval.reason).toMatch(/^stale: /);
    expect(autoApprovals(events)).toEqual([]);
  });

  it('a nine-month-old detection never acts automatically', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const events = s.detect('ann', 'known_compromise', 0.97, { occurredAtMs: s.nowMs - 270 * 24 * HOUR });
    expect(autoApprovals(events)).toEqual([]);
    expect(proposals(events)[0]!.guards.map((g) => g.guard)).toEqual(['stale']);
  });

  it('the limit comes from the policy (defaults.staleAfter)', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
defaults: { staleAfter: 5m }
rules:
  - id: compromise
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder: [{ action: revoke_sessions, approval: auto }]
`,
      catalogue: [{ id: 'ann', tier: 'development' }],
    });
    expect(
      autoApprovals(s.detect('ann', 'known_compromise', 0.97, { occurredAtMs: s.nowMs - 5 * 60_000 })),
    ).toHaveLength(1);
    const s2 = new Scenario({ policy: s.policy, catalogue: [{ id: 'bob', tier: 'development' }] });
    expect(
      autoApprovals(s2.detect('bob', 'known_compromise', 0.97, { occurredAtMs: s2.nowMs - 5 * 60_000 - 1 })),
    ).toEqual([]);
  });
});

describe('stale detections, in replay (receipt time `at`)', () => {
  const occurred = Date.parse('2026-10-01T10:00:00.000Z');
  const human = (name: string) => ({ provider: 'okta', id: `${name}@acme.example`, type: 'human' as const });
  const line = (name: string, receivedMs: number): HistoryLine => ({
    type: 'detection',
    id: `kc-${name}`,
    source: 'okta',
    kind: 'known_compromise',
    confidence: 0.97,
    severity: 'high',
    identity: human(name),
    occurredAt: iso(occurred),
    at: iso(receivedMs),
  });
  const catalogue = (name: string): HistoryLine => ({
    type: 'identity',
    entry: { ...human(name), tier: 'development' },
  });

  it('just inside the limit acts automatically, just outside goes to an analyst as stale', () => {
    const lines = [
      catalogue('inside'),
      catalogue('outside'),
      line('inside', occurred + LIMIT_MS),
      line('outside', occurred + LIMIT_MS + 1),
    ];
    const run = replayHistory(historyFromLines(lines), loadDefaultPolicy());
    const byIdentity = new Map(run.actions.map((a) => [a.identity.id, a]));
    expect(byIdentity.get('inside@acme.example')).toMatchObject({ mode: 'auto', type: 'revoke_sessions' });
    expect(byIdentity.get('outside@acme.example')).toMatchObject({
      mode: 'analyst',
      type: 'revoke_sessions',
    });
  });
});
