import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DETECTION_KINDS, IDENTITY_TYPES, NormalizedDetection, SEVERITIES } from '../../schemas/detection.ts';
import { normalize } from '../../services/ingest/normalizers/index.ts';
import { parseRecordsIndexed } from '../../services/ingest/normalizers/records.ts';
import { loadFixtures } from '../../test/support/normalizer-fixtures.ts';
import { TourniquetError } from '../errors.ts';
import {
  DETECTION_AVSC,
  decodeDetectionAvro,
  detectionAvroType,
  encodeDetectionAvro,
  fromAvro,
  toAvro,
} from './avro.ts';

const sample: NormalizedDetection = {
  id: 'gd-7f3c',
  source: 'guardduty',
  kind: 'anomalous_token_use',
  confidence: 0.85,
  severity: 'high',
  identity: {
    provider: 'aws',
    id: 'arn:aws:iam::123456789012:role/ci',
    type: 'workload',
    tenant: '123456789012',
  },
  occurredAt: '2026-11-01T08:15:30.123456+02:00',
  title: 'Credentials used from an external IP',
  evidence: { ip: '203.0.113.7', asn: 64500, tags: ['tor', null], nested: { ok: true } },
  raw: { detail: { id: 'gd-7f3c' }, n: [1, 2.5, -3] },
};

/** Everything zod accepts, with JSON evidence and raw (what can travel as JSON text). */
const arbDetection: fc.Arbitrary<NormalizedDetection> = fc
  .record(
    {
      id: fc.string({ minLength: 1, maxLength: 40 }),
      source: fc.string({ minLength: 1, maxLength: 20 }),
      kind: fc.constantFrom(...DETECTION_KINDS),
      confidence: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
      severity: fc.constantFrom(...SEVERITIES),
      identity: fc.record(
        {
          provider: fc.string({ minLength: 1, maxLength: 16 }),
          id: fc.string({ minLength: 1, maxLength: 64 }),
          type: fc.constantFrom(...IDENTITY_TYPES),
          tenant: fc.string({ minLength: 1, maxLength: 16 }),
          displayName: fc.string({ maxLength: 30 }),
        },
        { requiredKeys: ['provider', 'id', 'type'] },
      ),
      occurredAt: fc
        .date({
          min: new Date('1990-01-01T00:00:00Z'),
          max: new Date('2100-01-01T00:00:00Z'),
          noInvalidDate: true,
        })
        .chain((d) =>
          fc.constantFrom(
            d.toISOString(),
            d.toISOString().replace('Z', '+05:30'),
            d.toISOString().replace(/\.\d{3}Z$/, 'Z'),
            d.toISOString().replace('Z', '123-08:00'),
          ),
        ),
      title: fc.string({ maxLength: 60 }),
      evidence: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 })),
      raw: fc.jsonValue({ maxDepth: 3 }),
    },
    {
      requiredKeys: ['id', 'source', 'kind', 'confidence', 'severity', 'identity', 'occurredAt', 'evidence'],
    },
  )
  .map((d) => NormalizedDetection.parse(d));

/** JSON.parse(JSON.stringify(x)) except -0 (JSON has no negative zero): what evidence/raw can be. */
function jsonClean<T>(x: T): T {
  return JSON.parse(JSON.stringify(x)) as T;
}

describe('Avro ⇄ zod for NormalizedDetection', () => {
  it('the .avsc parses, names every enum symbol zod knows, and has null defaults for optional fields', () => {
    const fields = (DETECTION_AVSC as { fields: Array<{ name: string; type: unknown; default?: unknown }> })
      .fields;
    const byName = new Map(fields.map((f) => [f.name, f]));
    expect((byName.get('kind')!.type as { symbols: string[] }).symbols).toEqual([...DETECTION_KINDS]);
    expect((byName.get('severity')!.type as { symbols: string[] }).symbols).toEqual([...SEVERITIES]);
    for (const name of ['title', 'raw', 'receivedAt']) {
      expect(byName.get(name)!.type).toEqual(['null', 'string']);
      expect(byName.get(name)!.default).toBeNull();
    }
  });

  it('a raw record parsed from a message travels as the text it came in (not serialized again)', () => {
    const text = '{ "detail": {"id": "gd-7f3c"},\n  "n": [1, 2.5, -3] }';
    const [parsed] = parseRecordsIndexed(text).records;
    const record = toAvro({ ...sample, raw: parsed!.record });
    expect(record.raw).toBe(text);
    expect(fromAvro(record).raw).toEqual(sample.raw);
    // the same value built in code (no text behind it) is serialized
    expect(toAvro(sample).raw).toBe(JSON.stringify(sample.raw));
    // an array message is split into records: each element is serialized on its own
    const [first] = parseRecordsIndexed(`[${text}]`).records;
    expect(toAvro({ ...sample, raw: first!.record }).raw).toBe(JSON.stringify(sample.raw));
  });

  it('round-trips a sample record with deep equality (through the binary encoding)', () => {
    const buf = encodeDetectionAvro(sample, '2026-11-01T06:15:31.000Z');
    const back = decodeDetectionAvro(buf);
    expect(back.detection).toStrictEqual(sample);
    expect(back.receivedAt).toBe('2026-11-01T06:15:31.000Z');
    expect(fromAvro(toAvro(sample))).toStrictEqual(sample);
  });

  it('round-trips every vendor fixture after normalization', async () => {
    const fixtures = loadFixtures();
    expect(fixtures.length).toBeGreaterThan(10);
    for (const f of fixtures) {
      let d: NormalizedDetection;
      try {
        d = await normalize(f.record, { format: f.format });
      } catch {
        continue; // fixtures that are meant to be rejected
      }
      const back = decodeDetectionAvro(encodeDetectionAvro(d)).detection;
      expect(back, f.name).toStrictEqual(jsonClean(d));
    }
  });

  it('round-trips generated detections: Avro and zod agree', () => {
    fc.assert(
      fc.property(
        arbDetection,
        fc.option(fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
        (d, at) => {
          const record = toAvro(d, at ?? undefined);
          expect(detectionAvroType.isValid(record)).toBe(true);
          const back = decodeDetectionAvro(detectionAvroType.toBuffer(record));
          expect(back.detection).toStrictEqual(jsonClean(d));
          expect(back.receivedAt).toBe(at ?? null);
          // and zod accepts what Avro gave back, unchanged
          expect(NormalizedDetection.parse(back.detection)).toStrictEqual(back.detection);
        },
      ),
      { numRuns: 500 },
    );
  });

  type Rec = Record<string, unknown>;
  const id = (r: Rec) => r.identity as Rec;
  /** The same defect twice: in a detection (for zod / toAvro) and in an Avro record (for fromAvro). */
  const invalidMutations: Array<[string, (d: Rec) => void, (a: Rec) => void]> = [
    ['unknown kind', (d) => (d.kind = 'lateral_movement'), (a) => (a.kind = 'lateral_movement')],
    ['unknown severity', (d) => (d.severity = 'urgent'), (a) => (a.severity = 'urgent')],
    ['identity type', (d) => (id(d).type = 'robot'), (a) => (id(a).type = 'robot')],
    ['missing identity', (d) => delete d.identity, (a) => delete a.identity],
    ['missing id', (d) => delete d.id, (a) => delete a.id],
    ['confidence is a string', (d) => (d.confidence = '0.9'), (a) => (a.confidence = '0.9')],
    ['confidence above 1', (d) => (d.confidence = 1.5), (a) => (a.confidence = 1.5)],
    ['empty id', (d) => (d.id = ''), (a) => (a.id = '')],
    ['empty identity id', (d) => (id(d).id = ''), (a) => (id(a).id = '')],
    [
      'occurredAt without zone',
      (d) => (d.occurredAt = '2026-11-01T08:15:30'),
      (a) => (a.occurredAt = '2026-11-01T08:15:30'),
    ],
    ['evidence is an array', (d) => (d.evidence = [1, 2]), (a) => (a.evidence = '[1,2]')],
  ];

  it.each(invalidMutations)(
    'rejects an invalid record on both sides: %s',
    (_name, breakDetection, breakRecord) => {
      const bad = structuredClone(sample) as unknown as Rec;
      breakDetection(bad);
      expect(NormalizedDetection.safeParse(bad).success).toBe(false);
      expect(() => toAvro(bad as never)).toThrow(TourniquetError);
      const record = structuredClone(toAvro(sample)) as unknown as Rec;
      breakRecord(record);
      expect(() => fromAvro(record)).toThrow(expect.objectContaining({ code: 'DECODE_FAILED' }));
    },
  );

  it('rejects generated invalid detections on both sides', () => {
    const arbBreak = fc.constantFrom<Array<(d: Record<string, unknown>) => void>>(
      ...invalidMutations.map(([, m]) => m),
    );
    fc.assert(
      fc.property(arbDetection, arbBreak, (d, breakIt) => {
        const bad = structuredClone(d) as unknown as Record<string, unknown>;
        breakIt(bad);
        expect(NormalizedDetection.safeParse(bad).success).toBe(false);
        expect(() => toAvro(bad as never)).toThrow(TourniquetError);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects payloads that are not this schema, and evidence that is not JSON', () => {
    expect(() => decodeDetectionAvro(Buffer.from('{"id":"x"}'))).toThrow(/does not decode/);
    const record = toAvro(sample);
    expect(() => fromAvro({ ...record, evidence: '{not json' })).toThrow(/not valid JSON/);
    expect(() => fromAvro({ ...record, evidence: '[1]' })).toThrow(/invalid/);
    expect(() => toAvro({ ...sample, evidence: { big: 10n } })).toThrow(
      /evidence.big: holds a bigint, which JSON cannot carry/,
    );
  });

  it('reads data written with an older schema (BACKWARD): a v0 without receivedAt and title', () => {
    const v0 = structuredClone(DETECTION_AVSC) as { fields: Array<{ name: string }> };
    v0.fields = v0.fields.filter((f) => f.name !== 'receivedAt' && f.name !== 'title');
    const writer = avro.Type.forSchema(v0 as avro.Schema);
    const { receivedAt: _r, title: _t, ...old } = toAvro(sample);
    const payload = writer.toBuffer(old);
    const back = decodeDetectionAvro(payload, detectionAvroType.createResolver(writer));
    const { title: _title, ...expected } = sample;
    expect(back.detection).toStrictEqual(expected);
    expect(back.receivedAt).toBeNull();
  });

  it('reads data written with a newer schema that added an enum symbol: it maps to the default', () => {
    const v2 = structuredClone(DETECTION_AVSC) as {
      fields: Array<{ name: string; type: { symbols?: string[] } }>;
    };
    const kind = v2.fields.find((f) => f.name === 'kind')!;
    kind.type.symbols = [...kind.type.symbols!, 'session_hijack'];
    const writer = avro.Type.forSchema(v2 as unknown as avro.Schema);
    const payload = writer.toBuffer({ ...toAvro(sample), kind: 'session_hijack' });
    const back = decodeDetectionAvro(payload, detectionAvroType.createResolver(writer));
    expect(back.detection.kind).toBe('other');
  });
});
