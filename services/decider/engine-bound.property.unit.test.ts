/**
 * The decider's identity cache is a bound on memory, never on behaviour: an engine that keeps one
 * identity's state (and reloads every other one from its stream) decides exactly what an engine that
 * keeps every state decides, event for event, for any interleaving of detections, approvals,
 * rejections, verdicts and expiry ticks across identities. FC_RUNS=1000 for a deeper search.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import type { NewEvent } from '../../schemas/events.ts';
import type { DeciderInput } from './core/types.ts';
import { DeciderEngine } from './engine.ts';
import { loadDefaultPolicy } from './policy/load.ts';

const T0 = Date.UTC(2026, 10, 1, 8, 0, 0);
const KINDS = [
  'impossible_travel',
  'anomalous_token_use',
  'known_compromise',
  'mfa_fatigue',
  'secret_exposure',
] as const;
const IDENTITIES: IdentityRef[] = [
  { provider: 'okta', id: 'alice', type: 'human' },
  { provider: 'okta', id: 'bob', type: 'human' },
  { provider: 'github', id: 'ci-bot', type: 'service_account' },
  { provider: 'entra', id: 'carol', type: 'human' },
  { provider: 'aws', id: 'deploy-key', type: 'api_key' },
];
const ANALYST = { kind: 'human' as const, id: 'ana', role: 'analyst' as const };
const ANALYST2 = { kind: 'human' as const, id: 'ben', role: 'analyst' as const };

/** Most ops go to three identities (so histories build up), ticks reach all five. */
const WHO = 2;

type Op =
  | { op: 'detection'; who: number; kind: number; confidence: number; source: number; dup: boolean }
  | { op: 'approve' | 'reject'; who: number; second: boolean }
  | { op: 'verdict'; who: number; benign: boolean }
  | { op: 'tick'; who: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('detection' as const),
      who: fc.nat(WHO),
      // mostly kinds and confidences the default policy acts on, so that decisions depend on history
      kind: fc.oneof({ weight: 4, arbitrary: fc.nat(1) }, { weight: 1, arbitrary: fc.nat(KINDS.length - 1) }),
      confidence: fc.constantFrom(0.7, 0.85, 0.9, 0.95),
      source: fc.nat(2),
      dup: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constantFrom('approve' as const, 'reject' as const),
      who: fc.nat(WHO),
      second: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('verdict' as const), who: fc.nat(WHO), benign: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('tick' as const), who: fc.nat(IDENTITIES.length - 1) }),
  },
);

/** Turns an op into an input, naming the latest action or case of that identity seen so far. */
function inputOf(
  op: Op,
  step: number,
  minutes: number,
  seen: { actions: Map<number, string>; cases: Map<number, string> },
): DeciderInput {
  const at = new Date(T0 + minutes * 60_000).toISOString();
  const identity = IDENTITIES[op.who]!;
  switch (op.op) {
    case 'detection': {
      const n = op.dup ? Math.max(0, step - 1) : step;
      return {
        type: 'detection',
        at,
        detection: {
          id: `d-${op.who}-${n}`,
          source: ['okta', 'splunk', 'sentinel'][op.source]!,
          kind: KINDS[op.kind]!,
          confidence: op.confidence,
          severity: 'high',
          identity,
          occurredAt: at,
          evidence: {},
        },
      };
    }
    case 'approve':
    case 'reject': {
      const actionId = seen.actions.get(op.who) ?? `act-none-${op.who}`;
      const by = op.second ? ANALYST2 : ANALYST;
      return op.op === 'approve'
        ? { type: 'approve', at, identity, actionId, by }
        : { type: 'reject', at, identity, actionId, by, reason: 'not this one' };
    }
    case 'verdict':
      return {
        type: 'verdict',
        at,
        identity,
        caseId: seen.cases.get(op.who) ?? `case-none-${op.who}`,
        verdict: op.benign ? 'benign' : 'malicious',
        by: ANALYST,
      };
    case 'tick':
      return { type: 'tick', at, identity };
  }
}

type Outcome = { events: NewEvent[] } | { error: string };

async function run(
  ops: readonly Op[],
  gaps: readonly number[],
  maxCachedIdentities?: number,
): Promise<Outcome[]> {
  const store = new SqliteEventStore({ path: ':memory:' });
  const engine = new DeciderEngine({
    store,
    policy: loadDefaultPolicy(),
    ...(maxCachedIdentities !== undefined ? { maxCachedIdentities } : {}),
  });
  await engine.start();
  const seen = { actions: new Map<number, string>(), cases: new Map<number, string>() };
  const out: Outcome[] = [];
  let minutes = 0;
  try {
    for (const [i, op] of ops.entries()) {
      minutes += gaps[i] ?? 1;
      const input = inputOf(op, i, minutes, seen);
      try {
        const { events } = await engine.handle(input);
        for (const e of events) {
          if (e.type === 'ActionProposed') seen.actions.set(op.who, e.data.actionId);
          if (e.type === 'CaseOpened') seen.cases.set(op.who, e.data.caseId);
        }
        out.push({ events });
        if (maxCachedIdentities !== undefined)
          expect(engine.cachedIdentities).toBeLessThanOrEqual(maxCachedIdentities);
      } catch (err) {
        out.push({ error: `${(err as { code?: string }).code ?? 'UNTYPED'}: ${(err as Error).message}` });
      }
    }
  } finally {
    await store.close();
  }
  return out;
}

describe('decider identity cache bound', () => {
  it('decisions with a bound of 1 or 2 identities equal decisions with no bound, event for event', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        fc.array(fc.constantFrom(0, 1, 5, 20, 90), { minLength: 60, maxLength: 60 }),
        fc.constantFrom(1, 2),
        async (ops, gaps, bound) => {
          const unbounded = await run(ops, gaps);
          const bounded = await run(ops, gaps, bound);
          expect(bounded).toEqual(unbounded);
        },
      ),
      { numRuns: Number(process.env.FC_RUNS ?? 60) },
    );
  }, 120_000);

  it('the generated histories do reach decisions, approvals and verdicts (the property is not vacuous)', async () => {
    const ops: Op[] = [
      { op: 'detection', who: 0, kind: 2, confidence: 0.95, source: 0, dup: false },
      { op: 'detection', who: 1, kind: 0, confidence: 0.85, source: 1, dup: false },
      { op: 'detection', who: 1, kind: 0, confidence: 0.85, source: 2, dup: false },
      { op: 'approve', who: 1, second: false },
      { op: 'verdict', who: 0, benign: true },
      { op: 'tick', who: 1 },
    ];
    const out = await run(ops, [1, 1, 1, 1, 1, 300], 1);
    const types = out.flatMap((o) => ('events' in o ? o.events.map((e) => e.type) : []));
    expect(types).toContain('ActionProposed');
    expect(types).toContain('CaseResolved');
    expect(out).toEqual(await run(ops, [1, 1, 1, 1, 1, 300]));
  });
});
