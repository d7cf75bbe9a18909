import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { schemaHistoryRecord } from './history.ts';
import { plainHistoryRecord } from './history-fast.ts';
import { generateHistory } from './scenarios/index.ts';

/** The schema path's record, or undefined when the schemas refuse the line. */
function bySchema(value: unknown) {
  try {
    return schemaHistoryRecord(value, 1);
  } catch {
    return undefined;
  }
}

const canonicalTime = fc
  .date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
/** Mostly valid values, sometimes anything else: lines the fast path takes, and near misses. */
const mostly = <T>(valid: fc.Arbitrary<T>, junk: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: junk, weight: 1 });
const time = mostly(
  canonicalTime,
  fc.oneof(
    fc.constantFrom(
      '2026-10-01T00:00:00Z',
      '2026-10-01T00:00:00.000+02:00',
      '2026-02-30T00:00:00.000Z',
      'soon',
      '',
    ),
    fc.constant(undefined),
    fc.integer(),
  ),
);
const text = mostly(
  fc.oneof(fc.string({ minLength: 1, maxLength: 6 }), fc.constantFrom('okta', 'a@b')),
  fc.oneof(fc.constantFrom('', undefined), fc.integer()),
);
const identityType = mostly(
  fc.constantFrom('human', 'service_account', 'oauth_app', 'api_key', 'workload'),
  fc.constantFrom('robot', undefined),
);
/** A record whose keys are usually all there (sometimes any of them missing). */
const optionalRecord = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T) =>
  mostly(fc.record(model), fc.record(model, { requiredKeys: [] }));
const identityName = fc.oneof(
  optionalRecord({ provider: text, id: text, type: identityType, tenant: text, extra: text }),
  fc.constantFrom(null, 'okta:alice', [] as unknown[]),
);
const actor = fc.oneof(text, optionalRecord({ id: text, role: text }), fc.constant(null));

const verdictLine = optionalRecord({
  type: fc.constant('verdict'),
  identity: identityName,
  verdict: mostly(fc.constantFrom('malicious', 'benign'), fc.constantFrom('unsure', undefined)),
  at: time,
  by: actor,
  note: text,
});
const approvalLine = optionalRecord({
  type: fc.constant('approval'),
  actionRef: text,
  identity: identityName,
  decision: mostly(fc.constantFrom('approve', 'reject'), fc.constantFrom('maybe', undefined)),
  by: actor,
  at: time,
  reason: text,
});
const catalogueEntry = optionalRecord({
  provider: text,
  id: text,
  type: identityType,
  tenant: text,
  owner: text,
  consumers: mostly(fc.integer({ min: 0, max: 5 }), fc.oneof(fc.integer({ min: -2, max: -1 }), fc.double())),
  tier: mostly(
    fc.constantFrom('production', 'staging', 'development', 'sandbox'),
    fc.constantFrom('prod', undefined),
  ),
  tags: fc.oneof(fc.array(text, { maxLength: 3 }), fc.constant(undefined), fc.string()),
  breakGlass: mostly(fc.boolean(), fc.constantFrom('yes', undefined)),
  thirdParty: fc.oneof(optionalRecord({ partner: text, grant: text, extra: text }), fc.constant(undefined)),
  secrets: mostly(fc.constantFrom('managed_vault', 'unmanaged', 'none'), fc.constantFrom('vault', undefined)),
  aliases: fc.oneof(
    fc.array(optionalRecord({ provider: text, id: text, extra: text }), { maxLength: 3 }),
    fc.constant(undefined),
  ),
  at: time,
});
const identityLine = optionalRecord({ type: fc.constant('identity'), at: time, entry: catalogueEntry });
const detectionLine = optionalRecord({
  type: fc.constant('detection'),
  at: time,
  id: text,
  source: text,
  kind: mostly(fc.constantFrom('impossible_travel', 'other'), fc.constantFrom('nope', undefined)),
  confidence: mostly(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: -0.5, max: 1.5 })),
  severity: mostly(fc.constantFrom('low', 'high'), fc.constantFrom('severe', undefined)),
  identity: fc.oneof(
    optionalRecord({ provider: text, id: text, type: identityType, tenant: text, displayName: text }),
    fc.constant(null),
  ),
  occurredAt: time,
  evidence: fc.oneof(
    fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })),
    fc.constant(undefined),
  ),
});
const anyLine = fc.oneof(
  verdictLine,
  approvalLine,
  identityLine,
  detectionLine,
  fc.jsonValue({ maxDepth: 2 }),
);

describe('the history fast path', () => {
  it('vouches only for lines the schemas accept, with the very record the schemas build', () => {
    let vouched = 0;
    fc.assert(
      fc.property(anyLine, (value) => {
        // JSON round trip: the reader only ever sees what JSON.parse makes (no undefined, no -0).
        const parsed: unknown = JSON.parse(JSON.stringify(value) ?? 'null');
        const fast = plainHistoryRecord(parsed);
        if (fast === undefined) return; // deferred: the schemas decide (and explain) it
        vouched++;
        const slow = bySchema(parsed);
        expect(slow).toBeDefined();
        expect(fast).toStrictEqual(slow);
        expect(JSON.stringify(fast)).toBe(JSON.stringify(slow));
      }),
      { numRuns: 20_000 },
    );
    // Vouching for nothing would pass the property and lose the speed.
    expect(vouched).toBeGreaterThan(200);
  });

  it('takes every line the scenario generators write, and builds what the schemas build', () => {
    const counts: Record<string, number> = {};
    for (const scenario of ['mixed', 'benign-noise', 'storm']) {
      for (const line of generateHistory({ scenario, seed: 4, identities: 60, days: 3 })) {
        const parsed: unknown = JSON.parse(JSON.stringify(line));
        const fast = plainHistoryRecord(parsed);
        expect(fast, JSON.stringify(line)).toBeDefined();
        expect(JSON.stringify(fast)).toBe(JSON.stringify(schemaHistoryRecord(parsed, 1)));
        counts[line.type] = (counts[line.type] ?? 0) + 1;
      }
    }
    for (const type of ['detection', 'identity', 'approval', 'verdict'])
      expect(counts[type]).toBeGreaterThan(0);
  });
});
