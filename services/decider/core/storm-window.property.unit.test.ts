/**
 * The storm ledger's sliding window: the identity count it keeps per rule, moved by its edges from
 * one decision to the next, always equals the fullest window recounted from scratch, whatever the
 * order of firings, their removals (an append that failed), storm resolutions and the times asked.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type NewEvent, SCHEMA_VERSION } from '../../../schemas/events.ts';
import { StormLedger } from './storm.ts';

const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 200) };
const T = Date.parse('2026-12-01T08:00:00.000Z');
const MINUTE = 60_000;
const RULES = ['ti', 'mfa'] as const;

function proposal(ruleId: string, who: number, atMs: number): NewEvent {
  return {
    id: `p-${ruleId}-${who}-${atMs}`,
    type: 'ActionProposed',
    stream: `identity-okta:u${who}`,
    occurredAt: new Date(atMs).toISOString(),
    causationId: null,
    correlationId: null,
    schemaVersion: SCHEMA_VERSION,
    data: {
      actionId: `a-${who}-${atMs}`,
      caseId: `c-${who}`,
      identity: { provider: 'okta', id: `u${who}`, type: 'human' },
      action: 'revoke_sessions',
      stage: 1,
      ruleId,
      policyId: 'p',
      policyVersion: '1',
      detectionIds: [],
      args: {},
      argsDigest: 'd',
      blastRadius: {
        consumers: 1,
        tier: 'development',
        shared: false,
        thirdParty: false,
        reversible: true,
        budgetUsed: 0,
        budgetLimit: -1,
        budgetKeys: [],
      },
      approval: {
        mode: 'analyst',
        ttlSeconds: 60,
        expiresAt: new Date(atMs + 60_000).toISOString(),
        reason: 'r',
      },
      guards: [],
      rollback: { complete: true, notes: [] },
    },
  } as NewEvent;
}

function resolved(ruleId: string, atMs: number): NewEvent[] {
  const base = {
    stream: 'control-automation',
    occurredAt: new Date(atMs).toISOString(),
    causationId: null,
    correlationId: null,
    schemaVersion: SCHEMA_VERSION,
  };
  const stormId = `storm-${ruleId}-${atMs}`;
  return [
    {
      ...base,
      id: `${stormId}-detected`,
      type: 'StormDetected',
      data: {
        stormId,
        ruleId,
        source: 's',
        identityCount: 1,
        identities: [],
        windowSeconds: 3600,
        baseline: 0,
        threshold: 2,
      },
    },
    {
      ...base,
      id: `${stormId}-resolved`,
      type: 'StormResolved',
      data: { stormId, ruleId, reason: 'analyst', by: { kind: 'human', id: 'ana' } },
    },
  ] as NewEvent[];
}

const arbOp = fc.oneof(
  // Mostly in time order (a clock moving forward), sometimes late by up to an hour.
  fc.record({
    op: fc.constant('fire' as const),
    rule: fc.constantFrom(...RULES),
    // Mostly distinct identities, so a firing counted twice or not at all changes the count.
    who: fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 10_000 })),
    step: fc.integer({ min: 0, max: 4 }),
    late: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 60 })),
  }),
  fc.record({
    op: fc.constant('ask' as const),
    // One rule asked rarely: its window is left far behind, then dropped firings leave it.
    rule: fc.oneof(
      { arbitrary: fc.constant(RULES[0]), weight: 12 },
      { arbitrary: fc.constant(RULES[1]), weight: 1 },
    ),
    who: fc.integer({ min: 0, max: 7 }),
    step: fc.integer({ min: 0, max: 4 }),
    late: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -60, max: 90 })),
  }),
  fc.record({ op: fc.constant('undo' as const) }),
  fc.record({ op: fc.constant('resolve' as const), rule: fc.constantFrom(...RULES) }),
);

describe('storm ledger sliding window', () => {
  it('counts the same identities as the window recounted from scratch', () => {
    fc.assert(
      fc.property(
        fc.array(arbOp, { minLength: 1, maxLength: 300, size: 'large' }),
        fc.integer({ min: 5, max: 120 }),
        (ops, windowMin) => {
          // A short retention so that old firings are also dropped while a window is held.
          const ledger = new StormLedger(2 * 60 * MINUTE);
          const windowMs = windowMin * MINUTE;
          const recorded: NewEvent[] = [];
          let now = T;
          for (const o of ops) {
            if (o.op === 'fire') {
              now += o.step * MINUTE;
              const e = proposal(o.rule, o.who, now - o.late * MINUTE);
              ledger.record(e);
              recorded.push(e);
            } else if (o.op === 'undo') {
              const e = recorded.pop();
              if (e) ledger.unrecord(e);
            } else if (o.op === 'resolve') {
              for (const e of resolved(o.rule, now)) ledger.record(e);
            } else {
              now += o.step * MINUTE;
              const atMs = now - o.late * MINUTE;
              const notBefore = ledger.resolvedAtMs(o.rule);
              const self = `okta:u${o.who}`;
              const exact = ledger.busiestWindow(o.rule, atMs, windowMs, notBefore, self).size;
              expect(ledger.distinctIdentities(o.rule, atMs, windowMs, notBefore, self)).toBe(exact);
            }
          }
        },
      ),
      RUNS,
    );
  });

  it('keeps its window on the firings that remain when old ones are dropped from under it', () => {
    const ledger = new StormLedger(60 * MINUTE);
    const fire = (who: number, min: number) => ledger.record(proposal('ti', who, T + min * MINUTE));
    const ask = (min: number) => ledger.distinctIdentities('ti', T + min * MINUTE, 60 * MINUTE, -1, 'x');
    for (const [who, min] of [
      [0, 0],
      [1, 10],
      [2, 20],
      [3, 50],
    ] as const)
      fire(who, min);
    expect(ask(65)).toBe(4); // u1, u2, u3 and x
    fire(4, 85); // drops u0, u1 and u2 (older than an hour), two of them inside the window held
    expect(ask(86)).toBe(3); // u3, u4 and x
    expect(ledger.busiestWindow('ti', T + 86 * MINUTE, 60 * MINUTE, -1, 'x').size).toBe(3);
  });
});
