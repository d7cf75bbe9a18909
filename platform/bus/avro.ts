/**
 * The normalized detection in Avro (schemas/detection.avsc, the contract), as it travels on `tourniquet.detections`.
 * zod (schemas/detection.ts) stays the source of truth: `toAvro` validates with zod before it builds
 * the Avro record, `fromAvro` checks the Avro shape and then validates with zod again, so a record
 * that one side rejects never passes the other. `evidence` and `raw` travel as JSON strings.
 */
import { readFileSync } from 'node:fs';
import avro from 'avsc';
import {
  type NormalizedDetection,
  type NormalizedDetectionInput,
  safeParseDetection,
} from '../../schemas/detection.ts';
import { knownJsonText } from '../../schemas/json-text.ts';
import { checkedJsonText } from '../../schemas/text.ts';
import { issuesFromZod, TourniquetError } from '../errors.ts';

/** The schema text as registered (subject `tourniquet.detections-value`). */
export const DETECTION_AVSC_TEXT: string = readFileSync(
  new URL('../../schemas/detection.avsc', import.meta.url),
  'utf8',
);
export const DETECTION_AVSC: avro.Schema = JSON.parse(DETECTION_AVSC_TEXT) as avro.Schema;
export const detectionAvroType: avro.Type = avro.Type.forSchema(DETECTION_AVSC);

/** The Avro record (what avsc encodes and decodes). */
export interface DetectionAvro {
  id: string;
  source: string;
  kind: string;
  confidence: number;
  severity: string;
  identity: { provider: string; id: string; type: string; tenant: string | null; displayName: string | null };
  occurredAt: string;
  title: string | null;
  evidence: string;
  raw: string | null;
  receivedAt: string | null;
}

function decodeFailed(
  reason: string,
  message: string,
  details: Record<string, unknown> = {},
): TourniquetError {
  return new TourniquetError('DECODE_FAILED', message, { status: 400, details: { reason, ...details } });
}

/** JSON.stringify that refuses what JSON cannot carry back (undefined, functions, symbols, bigint). */
function jsonText(value: unknown, field: string): string {
  let text = knownJsonText(value); // a raw record ingest parsed from this very text, or kept as text
  if (text !== undefined) return text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new TourniquetError(
      'VALIDATION_FAILED',
      `${field} is not JSON-serializable: ${(e as Error).message}`,
      {
        status: 400,
        details: { issues: [{ path: field, message: 'not JSON-serializable' }] },
      },
    );
  }
  if (text === undefined) {
    throw new TourniquetError('VALIDATION_FAILED', `${field} is not JSON-serializable`, {
      status: 400,
      details: { issues: [{ path: field, message: 'not JSON-serializable' }] },
    });
  }
  return text;
}

/**
 * A detection → its Avro record. Validates with zod first (throws ValidationError-shaped
 * TourniquetError VALIDATION_FAILED); `receivedAt` is the time ingest accepted it.
 */
export function toAvro(
  detection: NormalizedDetectionInput | NormalizedDetection,
  receivedAt?: string,
): DetectionAvro {
  const parsed = safeParseDetection(detection);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error.issues);
    throw new TourniquetError(
      'VALIDATION_FAILED',
      `invalid detection: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { status: 400, details: { issues } },
    );
  }
  const d = parsed.data;
  const record: DetectionAvro = {
    id: d.id,
    source: d.source,
    kind: d.kind,
    confidence: d.confidence,
    severity: d.severity,
    identity: {
      provider: d.identity.provider,
      id: d.identity.id,
      type: d.identity.type,
      tenant: d.identity.tenant ?? null,
      displayName: d.identity.displayName ?? null,
    },
    occurredAt: d.occurredAt,
    title: d.title ?? null,
    evidence: jsonText(d.evidence, 'evidence'),
    raw: d.raw === undefined ? null : jsonText(d.raw, 'raw'),
    receivedAt: receivedAt ?? null,
  };
  return record;
}

function parseJsonField(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw decodeFailed('invalid_json_field', `${field} is not valid JSON: ${(e as Error).message}`, {
      field,
    });
  }
}

/**
 * `raw` checked as JSON text within the limits and kept as text (a JsonText that parses only when
 * read), for consumers that pass it through unread: the decider's.
 */
function rawAsText(text: string): unknown {
  const checked = checkedJsonText(text, 'raw');
  if (!('kind' in checked)) return checked;
  if (checked.kind === 'value' && checked.message.startsWith('is not valid JSON'))
    throw decodeFailed('invalid_json_field', `raw ${checked.message}`, { field: 'raw' });
  const issues = [{ path: 'raw', message: checked.message }];
  throw decodeFailed('schema_validation', `decoded detection is invalid: raw: ${checked.message}`, {
    issues,
  });
}

export interface AvroReadOptions {
  /**
   * Keep `raw` as its JSON text (checked, not parsed: schemas/json-scan.ts) instead of a parsed value.
   * It still reads as JSON (`toJSON`, canonicalJson) and the event store stores the text as it came.
   */
  rawAsText?: boolean;
}

/**
 * An Avro record (as avsc decodes it) → the zod-validated detection. Throws TourniquetError
 * DECODE_FAILED with `details.reason` ('avro_shape', 'invalid_json_field' or 'schema_validation').
 */
export function fromAvro(record: unknown, opts: AvroReadOptions = {}): NormalizedDetection {
  const paths: string[] = [];
  if (!detectionAvroType.isValid(record, { errorHook: (path) => paths.push(path.join('.') || '(root)') })) {
    throw decodeFailed('avro_shape', `not a NormalizedDetection Avro record (invalid: ${paths.join(', ')})`, {
      paths,
    });
  }
  const r = record as DetectionAvro;
  const identity: Record<string, unknown> = {
    provider: r.identity.provider,
    id: r.identity.id,
    type: r.identity.type,
  };
  if (r.identity.tenant !== null) identity.tenant = r.identity.tenant;
  if (r.identity.displayName !== null) identity.displayName = r.identity.displayName;
  const candidate: Record<string, unknown> = {
    id: r.id,
    source: r.source,
    kind: r.kind,
    confidence: r.confidence,
    severity: r.severity,
    identity,
    occurredAt: r.occurredAt,
    evidence: parseJsonField(r.evidence, 'evidence'),
  };
  if (r.title !== null) candidate.title = r.title;
  if (r.raw !== null) candidate.raw = opts.rawAsText ? rawAsText(r.raw) : parseJsonField(r.raw, 'raw');
  const parsed = safeParseDetection(candidate);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error.issues);
    throw decodeFailed(
      'schema_validation',
      `decoded detection is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { issues },
    );
  }
  return parsed.data;
}

/** Avro binary (no Confluent framing) of a detection. */
export function encodeDetectionAvro(
  detection: NormalizedDetectionInput | NormalizedDetection,
  receivedAt?: string,
): Buffer {
  return detectionAvroType.toBuffer(toAvro(detection, receivedAt));
}

/**
 * Avro binary → detection and its receivedAt. `resolver` reads data written with another (older or
 * newer, compatible) writer schema into the current one.
 */
export function decodeDetectionAvro(
  payload: Buffer,
  resolver?: avro.Resolver,
  opts: AvroReadOptions = {},
): { detection: NormalizedDetection; receivedAt: string | null } {
  let record: unknown;
  try {
    record = resolver
      ? detectionAvroType.fromBuffer(payload, resolver)
      : detectionAvroType.fromBuffer(payload);
  } catch (e) {
    throw decodeFailed(
      'avro_decode',
      `Avro payload does not decode as NormalizedDetection: ${(e as Error).message}`,
    );
  }
  const detection = fromAvro(record, opts);
  return { detection, receivedAt: (record as DetectionAvro).receivedAt };
}
