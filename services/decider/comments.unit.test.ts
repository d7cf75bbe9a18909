import { describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { DeciderEngine } from './engine.ts';
import { loadDefaultPolicy } from './policy/load.ts';

const bob = { provider: 'okta', id: 'bob', type: 'human' as const };

describe('analyst comments are part of the record', () => {
  it('keeps the approver’s and the verdict’s comment in the events an auditor reads', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    const engine = new DeciderEngine({ store, policy: loadDefaultPolicy() });
    await engine.start();
    // below every specific rule: the fallback analyst-review rule proposes revoke_sessions for an analyst
    const first = await engine.handle({
      type: 'detection',
      at: '2026-11-01T08:00:00.000Z',
      detection: {
        id: 'd1',
        source: 'sentinel',
        kind: 'impossible_travel',
        confidence: 0.6,
        severity: 'medium',
        identity: bob,
        occurredAt: '2026-11-01T08:00:00.000Z',
        evidence: {},
      },
    });
    const proposal = first.events.find((e) => e.type === 'ActionProposed');
    if (proposal?.type !== 'ActionProposed') throw new Error('expected a proposal');
    expect(proposal.data.approval.mode).toBe('analyst');

    await engine.handle({
      type: 'approve',
      at: '2026-11-01T08:05:00.000Z',
      identity: bob,
      actionId: proposal.data.actionId,
      by: { id: 'dana', role: 'analyst' },
      comment: 'travel not on record; called the user',
    });
    await engine.handle({
      type: 'verdict',
      at: '2026-11-01T09:00:00.000Z',
      identity: bob,
      caseId: proposal.data.caseId,
      verdict: 'malicious',
      by: { id: 'dana', role: 'analyst' },
      comment: 'user confirmed he was not travelling',
    });
    const recorded = await store.readAll({ types: ['ActionApproved', 'CaseResolved'] });
    expect(recorded.map((e) => [e.type, (e.data as { comment?: string }).comment])).toEqual([
      ['ActionApproved', 'travel not on record; called the user'],
      ['CaseResolved', 'user confirmed he was not travelling'],
    ]);
    await store.close();
  });
});
