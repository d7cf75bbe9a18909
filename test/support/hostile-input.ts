import fc from 'fast-check';
import { DETECTION_KINDS, IDENTITY_TYPES, SEVERITIES } from '../../schemas/detection.ts';
import { identityStream, type NewEvent, SCHEMA_VERSION } from '../../schemas/events.ts';

/**
 * Hostile but plausible input for ingest: text with lone surrogates, NUL and astral characters,
 * deep and wide JSON, extreme numbers and dates. Shared by the canonical-text property tests (store
 * level) and the ingest fuzz suite (HTTP level).
 */

/** Text from any UTF-16 units (lone surrogates included), astral characters, NUL, or plain ASCII. */
export const hostileText = (maxLength = 12): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.string({ maxLength: 4 }),
          fc.constantFrom('\ud800', '\udfff', '\u0000', '\ud83d\ude00', '\ufffd'),
        )
        .map(([a, b]) => `${a}${b}`),
    },
  );

/** `depth` arrays, one inside the other, around a leaf. */
export const nested = (depth: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

/** JSON values: ordinary, with hostile strings and keys, extreme numbers, deep or wide. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 2,
    arbitrary: fc.dictionary(hostileText(6), fc.oneof(hostileText(8), fc.double(), fc.integer()), {
      maxKeys: 4,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      Number.MIN_VALUE,
      Number.MAX_SAFE_INTEGER + 2,
      -0,
      1e308,
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 200 }).map((d) => nested(d)) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 5000 })
      .map((n) => ({ wide: Array.from({ length: n }, (_, i) => i) })),
  },
);

const hostileTime = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .date({ noInvalidDate: true, min: new Date(-62_000_000_000_000), max: new Date(253_402_300_799_000) })
      .map((d) => d.toISOString()),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '0000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '+275760-09-13T00:00:00.000Z',
      '2026-02-29T00:00:00Z',
      '2024-02-29T23:59:60Z',
      '1970-01-01T00:00:00+14:00',
      'not a time',
    ),
  },
);

/** A detection-shaped object, often valid, sometimes hostile in any field. */
export const hostileDetection = (ids: fc.Arbitrary<string> = hostileText(16)) =>
  fc.record(
    {
      id: ids,
      source: fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom('splunk', 'okta') },
        { weight: 1, arbitrary: hostileText(8) },
      ),
      kind: fc.constantFrom(...DETECTION_KINDS),
      confidence: fc.oneof(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(0, 1, 1.0000001, -0, 5e-324),
      ),
      severity: fc.constantFrom(...SEVERITIES),
      identity: fc.record(
        {
          provider: fc.oneof(
            { weight: 3, arbitrary: fc.constant('okta') },
            { weight: 1, arbitrary: hostileText(8) },
          ),
          id: fc.oneof(
            { weight: 2, arbitrary: fc.constantFrom('alice', 'bob', 'svc-1') },
            { weight: 1, arbitrary: hostileText(12) },
          ),
          type: fc.constantFrom(...IDENTITY_TYPES),
          displayName: hostileText(8),
        },
        { requiredKeys: ['provider', 'id', 'type'] },
      ),
      occurredAt: hostileTime,
      title: hostileText(20),
      evidence: fc.dictionary(hostileText(6), hostileJson, { maxKeys: 3 }),
      raw: hostileJson,
    },
    { requiredKeys: ['id', 'source', 'kind', 'confidence', 'severity', 'identity', 'occurredAt'] },
  );

/** The DetectionReceived event the decider appends for an accepted detection (its envelope fields). */
export function receivedEvent(d: {
  id: string;
  source: string;
  identity: { provider: string; id: string };
  occurredAt: string;
}): NewEvent {
  return {
    id: `det-${d.identity.provider}:${d.identity.id}-${d.source}:${d.id}`,
    type: 'DetectionReceived',
    stream: identityStream(d.identity),
    occurredAt: d.occurredAt,
    causationId: null,
    correlationId: `case-${d.source}:${d.id}`,
    schemaVersion: SCHEMA_VERSION,
    data: { detection: d },
  } as NewEvent;
}
