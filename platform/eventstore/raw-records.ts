import { hash } from 'node:crypto';
import type { NormalizedDetection } from '../../schemas/detection.ts';
import type { EventDataOf, NewEvent, RawRecordRef } from '../../schemas/events.ts';
import { knownJsonText } from '../../schemas/json-text.ts';
import { canonicalJson } from '../digest.ts';
import { NotFoundError, TourniquetError } from '../errors.ts';

/**
 * A detection's raw vendor record is kept out of its DetectionReceived event: the store keeps it once,
 * content-addressed (the SHA-256 of its JSON text), written in the same transaction as the event, and
 * the event carries `rawRecord: {sha256, bytes}` in its place. The event is chained, so the digest is;
 * `audit verify` checks every referenced record's text against its digest. Events recorded before this
 * carry `raw` inline and read as they always did.
 */

/** What a store writes for one event: its data serialized once, and the raw record kept apart, if any. */
export interface StoredForm {
  data: string;
  raw: { ref: RawRecordRef; text: string } | undefined;
}

/** SHA-256 (hex) of a raw record's JSON text, as UTF-8. */
function rawRecordDigest(text: string): string {
  return hash('sha256', text);
}

/** The JSON text of a raw record: as it came when that is known, else serialized once. */
function rawText(raw: unknown): string {
  return knownJsonText(raw) ?? JSON.stringify(raw);
}

/** An event's data as recorded (an object), with its raw record apart when it carries one. */
export function withRawApart(e: NewEvent): { data: object; raw: StoredForm['raw'] } {
  if (e.type === 'DetectionReceived') {
    const { detection, rawRecord } = e.data;
    if (detection.raw !== undefined && rawRecord === undefined) {
      const text = rawText(detection.raw);
      const ref: RawRecordRef = { sha256: rawRecordDigest(text), bytes: Buffer.byteLength(text) };
      const { raw: _kept, ...rest } = detection;
      // rawRecord last: `rawRecordRefOf` finds it at the end of the text without parsing it
      return { data: { ...e.data, detection: rest, rawRecord: ref }, raw: { ref, text } };
    }
  }
  return { data: e.data, raw: undefined };
}

/** An event as the store writes it (see the module comment): its data serialized once. */
export function storedForm(e: NewEvent): StoredForm {
  const { data, raw } = withRawApart(e);
  return { data: JSON.stringify(data), raw };
}

/** A recorded event's reference to its raw record, at the very end of its stored JSON (top-level key). */
const REF_AT_END = /,"rawRecord":\{"sha256":"([0-9a-f]{64})","bytes":(\d+)\}\}$/;

/**
 * The raw record a stored DetectionReceived's data names, read from the end of its JSON text: the
 * top-level `rawRecord` member is written last, and a nested one (in evidence or an inline raw
 * record) is always followed by more closing braces, so it is never mistaken for it.
 */
export function rawRecordRefOf(type: string, data: string): RawRecordRef | undefined {
  if (type !== 'DetectionReceived' || !data.endsWith('}}')) return undefined;
  const m = REF_AT_END.exec(data);
  return m ? { sha256: m[1]!, bytes: Number(m[2]) } : undefined;
}

/** What is wrong with a stored raw record given the reference to it, if anything. */
export function rawRecordProblem(
  ref: RawRecordRef,
  body: string | undefined,
): 'missing' | 'altered' | undefined {
  if (body === undefined) return 'missing';
  if (rawRecordDigest(body) !== ref.sha256 || Buffer.byteLength(body) !== ref.bytes) return 'altered';
  return undefined;
}

/** A store that keeps raw records apart (every adapter of the port does). */
export interface RawRecordSource {
  readonly name: string;
  /** A raw record's JSON text by its SHA-256, checked against it; undefined when the store has none. */
  readRawRecord?(sha256: string): Promise<string | undefined>;
}

/** Throws CHAIN_BROKEN when a raw record read back does not match its digest. */
export function assertRawRecord(sha256: string, body: string | undefined): string | undefined {
  if (body !== undefined && rawRecordDigest(body) !== sha256) {
    throw new TourniquetError(
      'CHAIN_BROKEN',
      `raw record ${sha256} no longer matches its digest: it was altered after it was recorded (tourniquet audit verify)`,
      { status: 503, retriable: false, details: { sha256 } },
    );
  }
  return body;
}

/** A raw record's JSON text; NOT_FOUND when the store does not hold it. */
export async function readRawRecordText(store: RawRecordSource, sha256: string): Promise<string> {
  const text = store.readRawRecord ? await store.readRawRecord(sha256) : undefined;
  if (text === undefined) throw new NotFoundError('raw record', sha256);
  return text;
}

/**
 * A recorded DetectionReceived's detection with its raw record inline again (read from the store when
 * it was kept apart): for history export and anything that shows the vendor's record.
 */
export async function detectionWithRaw(
  store: RawRecordSource,
  data: EventDataOf<'DetectionReceived'>,
): Promise<NormalizedDetection> {
  if (!data.rawRecord) return data.detection;
  const text = await readRawRecordText(store, data.rawRecord.sha256);
  return { ...data.detection, raw: JSON.parse(text) as unknown };
}

/**
 * Whether a detection arriving again has the content already recorded for its `source` + `id` (the
 * recorded one's raw record may be kept apart). Raw records compare by digest first, then, when the
 * texts differ, as canonical JSON (key order and spacing do not make another record).
 */
export async function sameDetectionContent(
  store: RawRecordSource,
  recorded: EventDataOf<'DetectionReceived'>,
  incoming: NormalizedDetection,
): Promise<boolean> {
  const ref = recorded.rawRecord;
  if (!ref) return canonicalJson(recorded.detection) === canonicalJson(incoming);
  const { raw, ...rest } = incoming;
  if (canonicalJson(recorded.detection) !== canonicalJson(rest) || raw === undefined) return false;
  if (rawRecordDigest(rawText(raw)) === ref.sha256) return true;
  const stored = store.readRawRecord ? await store.readRawRecord(ref.sha256) : undefined;
  return stored !== undefined && canonicalJson(JSON.parse(stored)) === canonicalJson(raw);
}
