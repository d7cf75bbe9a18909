import { once } from 'node:events';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { canonicalJson } from '../platform/digest.ts';
import { TourniquetError } from '../platform/errors.ts';
import type { EventStore } from '../platform/eventstore/port.ts';
import { detectionWithRaw } from '../platform/eventstore/raw-records.ts';
import { CatalogueEntry } from '../schemas/catalogue.ts';
import {
  type IdentityRef,
  IdentityType,
  isCanonicalTime,
  NormalizedDetection as NormalizedDetectionSchema,
  safeParseDetection,
  Timestamp,
} from '../schemas/detection.ts';
import type { RecordedEvent } from '../schemas/events.ts';
import { DedupeTable } from '../services/decider/core/dedupe.ts';
import { plainHistoryRecord } from './history-fast.ts';
import type { HistoryRecord, Human } from './history-record.ts';

/**
 * History: what happened, as the replay harness consumes it. One JSON object per line (NDJSON),
 * each with a `type`:
 * - `detection`: a normalized detection, flat, plus an optional `at` (when Tourniquet received it;
 *   default its `occurredAt`);
 * - `identity`: `{at?, entry}`, a catalogue entry effective from `at` (or the entry's own `at`);
 *   nested because a catalogue entry has its own `type` field;
 * - `approval`: how a human actually answered: `{actionRef?, identity?, decision, by, at, reason?}`;
 *   `actionRef` names an action id, else the identity's oldest pending action is meant;
 * - `verdict`: ground truth `{identity {provider, id}, verdict, at, by?}`.
 */

const HISTORY_TYPES = ['detection', 'identity', 'approval', 'verdict'] as const;

/** A human as history records them: an id, or an id with a role. */
const HistoryActor = z.union([
  z.string().min(1),
  z.object({ id: z.string().min(1), role: z.string().optional() }),
]);
type HistoryActor = z.infer<typeof HistoryActor>;

/** Approvals and verdicts name identities by provider and id; the rest is optional. */
const IdentityName = z.object({
  provider: z.string().min(1),
  id: z.string().min(1),
  type: IdentityType.optional(),
  tenant: z.string().min(1).optional(),
});
type IdentityName = z.infer<typeof IdentityName>;

export type { HistoryRecord } from './history-record.ts';

export const DetectionLine = NormalizedDetectionSchema.extend({
  type: z.literal('detection'),
  at: Timestamp.optional(),
});
const IdentityLine = z.object({
  type: z.literal('identity'),
  at: Timestamp.optional(),
  entry: CatalogueEntry,
});
export const ApprovalLine = z
  .object({
    type: z.literal('approval'),
    actionRef: z.string().min(1).optional(),
    identity: IdentityName.optional(),
    decision: z.enum(['approve', 'reject']),
    by: HistoryActor,
    at: Timestamp,
    reason: z.string().optional(),
  })
  .refine((l) => l.actionRef !== undefined || l.identity !== undefined, {
    message: 'an approval needs an actionRef or an identity',
    path: ['actionRef'],
  });
export const VerdictLine = z.object({
  type: z.literal('verdict'),
  identity: IdentityName,
  verdict: z.enum(['malicious', 'benign']),
  at: Timestamp,
  by: HistoryActor.optional(),
});

/** One NDJSON line as written (input to the parser, output of generators and the exporter). */
export type DetectionLine = z.input<typeof DetectionLine>;
type IdentityLine = z.input<typeof IdentityLine>;
export type ApprovalLine = z.input<typeof ApprovalLine>;
export type VerdictLine = z.input<typeof VerdictLine>;
export type HistoryLine = DetectionLine | IdentityLine | ApprovalLine | VerdictLine;

export interface HistoryIssue {
  line: number;
  message: string;
}

export interface History {
  /** Valid records in input order (not necessarily time order: the replay merges by time). */
  records: HistoryRecord[];
  /** Identity keys (`provider:id`) by index: the `ix` of the records that name them. */
  identities: string[];
  /** Lines read, blank lines included. */
  lines: number;
  /** Invalid lines skipped (only with skipInvalid). */
  invalid: number;
  /** The first invalid lines (at most 20), for the message that reports them. */
  issues: HistoryIssue[];
  /**
   * Set by `withoutRepeatedDetections`: how many re-deliveries of an already seen detection
   * (same identity, source and id) were taken out. Their absence tells replay it need not dedupe.
   */
  repeatsRemoved?: number;
  /**
   * Set by `withoutConflictingDetections`: detections refused because their `source` + `id` was
   * already taken by an earlier detection of another identity or with other content, as the live
   * system refuses them (409 DUPLICATE_CONFLICT), and the first few of them.
   */
  conflictsRemoved?: number;
  conflicts?: Array<{ source: string; id: string; reason: 'other_identity' | 'different_content' }>;
}

export interface ReadHistoryOptions {
  /** Continue past invalid lines, counting them, instead of failing on the first. */
  skipInvalid?: boolean;
  onInvalid?: (issue: HistoryIssue) => void;
  /** Reading a file: characters read so far and the file's size in bytes (equal for ASCII). */
  onProgress?: (read: number, total: number) => void;
}

function invalid(line: number, message: string): TourniquetError {
  return new TourniquetError('HISTORY_INVALID', `line ${line}: ${message}`, {
    status: 400,
    details: { line },
  });
}

const human = (a: HistoryActor): Human =>
  typeof a === 'string' ? { id: a } : a.role ? { id: a.id, role: a.role } : { id: a.id };

function zodMessage(type: string, error: z.ZodError): string {
  const parts = error.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
  return `invalid ${type}: ${parts.join('; ')}${error.issues.length > 5 ? ` (+${error.issues.length - 5} more)` : ''}`;
}

/**
 * Validates one parsed line into a record; throws HISTORY_INVALID naming the line. The plainly
 * valid common line takes the hand-checked path (history-fast.ts); the schemas decide the rest.
 */
function toHistoryRecord(value: unknown, line: number): HistoryRecord {
  return plainHistoryRecord(value) ?? schemaHistoryRecord(value, line);
}

/** Validates one parsed line with the zod schemas (the reference): what the fast path defers. */
export function schemaHistoryRecord(value: unknown, line: number): HistoryRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalid(line, 'not a JSON object');
  const type = (value as { type?: unknown }).type;
  switch (type) {
    case 'detection': {
      // The detection schema strips `type` and `at` (unknown to it); `at` is checked on its own.
      const r = safeParseDetection(value);
      if (!r.success) {
        if ((value as { identity?: unknown }).identity === undefined)
          throw invalid(line, 'detection without identity');
        throw invalid(line, zodMessage('detection', r.error));
      }
      const at = (value as { at?: unknown }).at;
      if (at !== undefined && !isCanonicalTime(at)) {
        const t = Timestamp.safeParse(at);
        if (!t.success)
          throw invalid(
            line,
            zodMessage('detection', new z.ZodError(t.error.issues.map((i) => ({ ...i, path: ['at'] })))),
          );
      }
      const when = (at as string | undefined) ?? r.data.occurredAt;
      return { type: 'detection', atMs: Date.parse(when), at: when, detection: r.data, ix: -1 };
    }
    case 'identity': {
      const r = IdentityLine.safeParse(value);
      if (!r.success) throw invalid(line, zodMessage('identity', r.error));
      const at = r.data.at ?? r.data.entry.at;
      const entry = at ? { ...r.data.entry, at } : r.data.entry;
      return { type: 'identity', atMs: at ? Date.parse(at) : Number.NEGATIVE_INFINITY, entry };
    }
    case 'approval': {
      const r = ApprovalLine.safeParse(value);
      if (!r.success) throw invalid(line, zodMessage('approval', r.error));
      const d = r.data;
      return {
        type: 'approval',
        atMs: Date.parse(d.at),
        at: d.at,
        decision: d.decision,
        by: human(d.by),
        ...(d.actionRef ? { actionRef: d.actionRef } : {}),
        ...(d.identity ? { identity: d.identity } : {}),
        ...(d.reason !== undefined ? { reason: d.reason } : {}),
        ix: -1,
      };
    }
    case 'verdict': {
      const r = VerdictLine.safeParse(value);
      if (!r.success) throw invalid(line, zodMessage('verdict', r.error));
      const d = r.data;
      return {
        type: 'verdict',
        atMs: Date.parse(d.at),
        at: d.at,
        identity: d.identity,
        verdict: d.verdict,
        ...(d.by ? { by: human(d.by) } : {}),
        ix: -1,
      };
    }
    case undefined:
      throw invalid(line, `missing "type" (expected one of ${HISTORY_TYPES.join(', ')})`);
    default:
      throw invalid(
        line,
        `unknown type ${JSON.stringify(type)} (expected one of ${HISTORY_TYPES.join(', ')})`,
      );
  }
}

/** Parses one NDJSON line; throws HISTORY_INVALID naming the line number. */
export function parseHistoryLine(text: string, line: number): HistoryRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(line, `not valid JSON (${(err as Error).message})`);
  }
  return toHistoryRecord(value, line);
}

/** Splits a byte or text stream into lines without buffering the whole input. */
export async function* splitLines(source: AsyncIterable<string | Buffer>): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of source) {
    const text = rest + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      yield text.slice(start, end);
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  if (rest.length > 0) yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
}

export type HistorySource = string | Readable | AsyncIterable<string | Buffer>;

function openSource(source: HistorySource): AsyncIterable<string | Buffer> {
  if (typeof source !== 'string') return source;
  return createReadStream(source, { encoding: 'utf8', highWaterMark: 1 << 20 });
}

/** The identity object already kept that equals `i` (a loop: no closure allocated per line). */
function sameRef(refs: readonly IdentityRef[], i: IdentityRef): IdentityRef | undefined {
  for (let k = 0; k < refs.length; k++) {
    const x = refs[k]!;
    if (x.type === i.type && x.tenant === i.tenant && x.displayName === i.displayName) return x;
  }
  return undefined;
}

/** Empty or only whitespace (without trimming a copy of every line: almost none are blank). */
function isBlank(text: string): boolean {
  if (text.length === 0) return true;
  const c = text.charCodeAt(0);
  return (c === 32 || (c >= 9 && c <= 13) || c > 127) && text.trim().length === 0;
}

/**
 * Accumulates records into a History: numbers identities (`ix`) and shares one identity object
 * and one key string per identity, so a month of detections costs memory per identity, not per
 * line, and replay finds an identity's state by index instead of hashing a key per input.
 */
export class HistoryBuilder {
  private readonly records: HistoryRecord[] = [];
  private readonly identities: string[] = [];
  /** provider → id → the identity's index and the distinct identity objects seen for it. */
  private readonly byProvider = new Map<string, Map<string, { ix: number; refs: IdentityRef[] }>>();
  private readonly issues: HistoryIssue[] = [];
  private readonly opts: ReadHistoryOptions;
  lines = 0;
  invalid = 0;

  constructor(opts: ReadHistoryOptions = {}) {
    this.opts = opts;
  }

  private slot(provider: string, id: string): { ix: number; refs: IdentityRef[] } {
    let ids = this.byProvider.get(provider);
    if (!ids) {
      ids = new Map();
      this.byProvider.set(provider, ids);
    }
    let slot = ids.get(id);
    if (!slot) {
      slot = { ix: this.identities.length, refs: [] };
      this.identities.push(`${provider}:${id}`);
      ids.set(id, slot);
    }
    return slot;
  }

  add(r: HistoryRecord): void {
    if (r.type === 'detection') {
      const i = r.detection.identity;
      const slot = this.slot(i.provider, i.id);
      const shared = sameRef(slot.refs, i);
      if (shared) r.detection.identity = shared;
      else slot.refs.push(i);
      r.ix = slot.ix;
    } else if (r.type === 'verdict') {
      r.ix = this.slot(r.identity.provider, r.identity.id).ix;
    } else if (r.type === 'approval' && r.identity) {
      r.ix = this.slot(r.identity.provider, r.identity.id).ix;
    }
    this.records.push(r);
  }

  /** Parses one line (1-based number `line`); blank lines count but add nothing. */
  addLine(text: string): void {
    const line = ++this.lines;
    if (isBlank(text)) return;
    try {
      this.add(parseHistoryLine(text, line));
    } catch (err) {
      if (!this.opts.skipInvalid || !(err instanceof TourniquetError)) throw err;
      this.skip({ line, message: err.message });
    }
  }

  /** Validates one already-parsed line. */
  addValue(value: unknown): void {
    const line = ++this.lines;
    try {
      this.add(toHistoryRecord(value, line));
    } catch (err) {
      if (!this.opts.skipInvalid || !(err instanceof TourniquetError)) throw err;
      this.skip({ line, message: err.message });
    }
  }

  private skip(issue: HistoryIssue): void {
    this.invalid++;
    if (this.issues.length < 20) this.issues.push(issue);
    this.opts.onInvalid?.(issue);
  }

  /**
   * The history, by default without re-delivered detections (see withoutRepeatedDetections): they
   * never change a decision, so they are dropped once here and no replay of it needs to dedupe.
   */
  build(removeRepeats = true): History {
    const history: History = {
      records: this.records,
      identities: this.identities,
      lines: this.lines,
      invalid: this.invalid,
      issues: this.issues,
    };
    return withoutConflictsAndRepeats(history, removeRepeats);
  }
}

function unreadable(source: HistorySource, err: unknown): TourniquetError {
  if (err instanceof TourniquetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new TourniquetError(
    'HISTORY_INVALID',
    code === 'ENOENT'
      ? `history file not found: ${String(source)}`
      : `cannot read history: ${(err as Error).message}`,
    { status: 400, cause: err },
  );
}

/**
 * Reads a whole history (file path or stream) into memory: what replay and tune consume. Streams
 * the input in 1 MiB chunks and parses each chunk's lines synchronously (no promise per line).
 */
export async function readHistory(source: HistorySource, opts: ReadHistoryOptions = {}): Promise<History> {
  const builder = new HistoryBuilder(opts);
  let rest = '';
  let read = 0;
  let size = 0;
  if (opts.onProgress && typeof source === 'string') {
    try {
      size = statSync(source).size;
    } catch {
      // reported by the read below
    }
  }
  try {
    for await (const chunk of openSource(source)) {
      read += chunk.length;
      if (size > 0) opts.onProgress?.(Math.min(read, size), size);
      const text = rest + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        builder.addLine(text.slice(start, end));
        start = nl + 1;
      }
      rest = text.slice(start);
    }
  } catch (err) {
    throw unreadable(source, err);
  }
  if (rest.length > 0) builder.addLine(rest.endsWith('\r') ? rest.slice(0, -1) : rest);
  return builder.build();
}

/** Builds a history from in-memory lines (generators, tests), validating each like the reader does. */
export function historyFromLines(
  lines: Iterable<HistoryLine | unknown>,
  opts: ReadHistoryOptions = {},
): History {
  const builder = new HistoryBuilder(opts);
  for (const line of lines) builder.addValue(line);
  return builder.build();
}

/** Record indices in merge order: by time, ties by input order. Returns null when already in order. */
export function mergeOrder(records: readonly HistoryRecord[]): Uint32Array | null {
  let sorted = true;
  for (let i = 1; i < records.length; i++) {
    if (records[i]!.atMs < records[i - 1]!.atMs) {
      sorted = false;
      break;
    }
  }
  if (sorted) return null;
  const order = new Uint32Array(records.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  // Array.prototype.sort is stable; typed array sort is not guaranteed to be, so sort a plain array.
  const idx = Array.from(order);
  idx.sort((a, b) => records[a]!.atMs - records[b]!.atMs || a - b);
  return Uint32Array.from(idx);
}

/**
 * The history without re-delivered detections: for each identity, only the first detection with a
 * given source and id, in the order replay decides them. The decider ignores a re-delivery whatever
 * the policy, so a sweep removes them once here and its replays skip dedupe (one table probe per
 * detection per variant). Replaying the result gives exactly the events the full history gives.
 */
export function withoutRepeatedDetections(history: History): History {
  if (history.repeatsRemoved !== undefined) return history;
  const records = history.records;
  const order = mergeOrder(records);
  const table = new DedupeTable(records.length);
  const repeated = new Uint8Array(records.length);
  let removed = 0;
  for (let i = 0; i < records.length; i++) {
    const at = order ? order[i]! : i;
    const r = records[at]!;
    if (r.type !== 'detection') continue;
    // Owners are 1-based in a table; ix is this history's identity index.
    if (!table.add(r.ix + 1, r.detection.source, r.detection.id)) {
      repeated[at] = 1;
      removed++;
    }
  }
  return {
    ...history,
    records: removed === 0 ? records : records.filter((_, i) => repeated[i] === 0),
    repeatsRemoved: removed,
  };
}

/**
 * The history without conflicting duplicates: `source` + `id` is unique across the system, so a
 * detection whose key an earlier one (in the order replay decides them) holds for another identity,
 * or with other content, is refused as the live system refuses it, and counted. The same detection
 * again (same identity, same content) stays: it is a re-delivery, which the decider ignores.
 */
export function withoutConflictingDetections(history: History): History {
  if (history.conflictsRemoved !== undefined) return history;
  const records = history.records;
  const order = mergeOrder(records);
  const first = new Map<string, number>();
  const refused = new Uint8Array(records.length);
  const conflicts: NonNullable<History['conflicts']> = [];
  let removed = 0;
  for (let i = 0; i < records.length; i++) {
    const at = order ? order[i]! : i;
    const r = records[at]!;
    if (r.type !== 'detection') continue;
    const key = `${r.detection.source}\u0000${r.detection.id}`;
    const held = first.get(key);
    if (held === undefined) {
      first.set(key, at);
      continue;
    }
    const original = records[held] as DetectionRecord;
    const reason = conflictReason(original, r);
    if (!reason) continue;
    refused[at] = 1;
    removed++;
    if (conflicts.length < 20) conflicts.push({ source: r.detection.source, id: r.detection.id, reason });
  }
  return {
    ...history,
    records: removed === 0 ? records : records.filter((_, i) => refused[i] === 0),
    conflictsRemoved: removed,
    conflicts,
  };
}

/**
 * withoutConflictingDetections, then (with `removeRepeats`) withoutRepeatedDetections, in one pass
 * over the records in merge order: the first detection of a source + id holds it; a later one is
 * refused when it names another identity or has other content, and otherwise is a re-delivery of
 * the holder (same identity, same key). Nearly every key is unique, so a first pass only finds the
 * keys seen twice (one open-addressing table, no string or map entry per detection), and only the
 * detections with such a key are then compared.
 */
function withoutConflictsAndRepeats(history: History, removeRepeats: boolean): History {
  const records = history.records;
  const order = mergeOrder(records);
  const at = (i: number) => (order ? order[i]! : i);
  const seen = new DedupeTable(records.length);
  let repeated: DedupeTable | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.type !== 'detection') continue;
    // Which keys repeat does not depend on the order; which copy holds the key does (below).
    if (!seen.add(1, r.detection.source, r.detection.id)) {
      repeated ??= new DedupeTable();
      repeated.add(1, r.detection.source, r.detection.id);
    }
  }
  if (!repeated)
    return {
      ...history,
      conflictsRemoved: 0,
      conflicts: [],
      ...(removeRepeats ? { repeatsRemoved: 0 } : {}),
    };
  const holders = new Map<string, Map<string, number>>();
  // 1: refused as a conflict; 2: a re-delivery.
  const drop = new Uint8Array(records.length);
  const conflicts: NonNullable<History['conflicts']> = [];
  let refused = 0;
  let repeats = 0;
  for (let i = 0; i < records.length; i++) {
    const ri = at(i);
    const r = records[ri]!;
    if (r.type !== 'detection' || !repeated.has(1, r.detection.source, r.detection.id)) continue;
    const { source, id } = r.detection;
    let first = holders.get(source);
    if (!first) {
      first = new Map();
      holders.set(source, first);
    }
    const held = first.get(id);
    if (held === undefined) {
      first.set(id, ri);
      continue;
    }
    const original = records[held] as DetectionRecord;
    const reason = conflictReason(original, r);
    if (!reason) {
      drop[ri] = 2;
      repeats++;
      continue;
    }
    drop[ri] = 1;
    refused++;
    if (conflicts.length < 20) conflicts.push({ source, id, reason });
  }
  const dropped = refused + (removeRepeats ? repeats : 0);
  const kept = (i: number) => drop[i] === 0 || (drop[i] === 2 && !removeRepeats);
  return {
    ...history,
    records: dropped === 0 ? records : records.filter((_, i) => kept(i)),
    conflictsRemoved: refused,
    conflicts,
    ...(removeRepeats ? { repeatsRemoved: repeats } : {}),
  };
}

/** A record back as an NDJSON line (the exporter's and the generators' format). */
export function toHistoryLine(r: HistoryRecord): HistoryLine {
  switch (r.type) {
    case 'detection':
      return { type: 'detection', at: r.at, ...r.detection };
    case 'identity':
      return { type: 'identity', ...(r.entry.at ? { at: r.entry.at } : {}), entry: r.entry };
    case 'approval':
      return {
        type: 'approval',
        ...(r.actionRef ? { actionRef: r.actionRef } : {}),
        ...(r.identity ? { identity: r.identity } : {}),
        decision: r.decision,
        by: r.by.role ? r.by : r.by.id,
        at: r.at,
        ...(r.reason !== undefined ? { reason: r.reason } : {}),
      };
    case 'verdict':
      return {
        type: 'verdict',
        identity: r.identity,
        verdict: r.verdict,
        at: r.at,
        ...(r.by ? { by: r.by.role ? r.by : r.by.id } : {}),
      };
  }
}

const STORE_TYPES = [
  'DetectionReceived',
  'IdentityCatalogued',
  'ActionApproved',
  'ActionRejected',
  'CaseResolved',
] as const;

const name = (i: IdentityRef | IdentityName): IdentityName => ({
  provider: i.provider,
  id: i.id,
  ...(i.type ? { type: i.type } : {}),
  ...(i.tenant ? { tenant: i.tenant } : {}),
});

/** The history line a recorded event contributes, if any (decisions the policy made are not history). */
function historyLineOf(e: RecordedEvent): HistoryLine | null {
  switch (e.type) {
    case 'DetectionReceived':
      return { type: 'detection', at: e.occurredAt, ...e.data.detection };
    case 'IdentityCatalogued':
      return { type: 'identity', at: e.data.entry.at ?? e.occurredAt, entry: e.data.entry };
    case 'ActionApproved': {
      const by = e.data.by;
      if (by.kind !== 'human') return null; // policy pre-authorisation is the policy's decision, not history
      return {
        type: 'approval',
        actionRef: e.data.actionId,
        identity: name(e.data.identity),
        decision: 'approve',
        by: by.role ? { id: by.id, role: by.role } : by.id,
        at: e.occurredAt,
      };
    }
    case 'ActionRejected': {
      const by = e.data.by;
      // A benign verdict rejects what was pending: a consequence of the verdict, replayed from it.
      if (e.causationId === `${e.data.caseId}-resolved`) return null;
      if (by.kind !== 'human') return null;
      return {
        type: 'approval',
        actionRef: e.data.actionId,
        identity: name(e.data.identity),
        decision: 'reject',
        by: by.role ? { id: by.id, role: by.role } : by.id,
        at: e.occurredAt,
        reason: e.data.reason,
      };
    }
    case 'CaseResolved': {
      const by = e.data.by;
      const actor =
        by.kind === 'human'
          ? by.role
            ? { id: by.id, role: by.role }
            : by.id
          : by.kind === 'system'
            ? by.id
            : undefined;
      return {
        type: 'verdict',
        identity: name(e.data.identity),
        verdict: e.data.verdict,
        at: e.occurredAt,
        ...(actor ? { by: actor } : {}),
      };
    }
    default:
      return null;
  }
}

/** History lines from an event store, in store order, read page by page. */
export async function* storeHistoryLines(store: EventStore, pageSize = 5000): AsyncGenerator<HistoryLine> {
  let after = 0;
  for (;;) {
    const page = await store.readAll({ after, limit: pageSize, types: STORE_TYPES });
    for (const e of page) {
      // a detection's raw record kept apart by the store comes back inline, as it was received
      const line =
        e.type === 'DetectionReceived' && e.data.rawRecord
          ? historyLineOf({ ...e, data: { detection: await detectionWithRaw(store, e.data) } })
          : historyLineOf(e);
      if (line) yield line;
    }
    if (page.length < pageSize) return;
    after = page[page.length - 1]!.position;
  }
}

/** Builds a history from an event store: detections, catalogue, human approvals and verdicts. */
export async function readHistoryFromStore(store: EventStore): Promise<History> {
  const lines: HistoryLine[] = [];
  for await (const l of storeHistoryLines(store)) lines.push(l);
  return historyFromLines(lines);
}

/** Writes a store's history as NDJSON (for `tourniquet history export`). `out` is a path or a stream. */
export async function exportHistory(store: EventStore, out: string | Writable): Promise<{ lines: number }> {
  const stream = typeof out === 'string' ? createWriteStream(out, { encoding: 'utf8' }) : out;
  let lines = 0;
  let buffer = '';
  const flush = async () => {
    if (buffer.length === 0) return;
    const ok = stream.write(buffer);
    buffer = '';
    if (!ok) await once(stream, 'drain');
  };
  for await (const line of storeHistoryLines(store)) {
    buffer += `${JSON.stringify(line)}\n`;
    lines++;
    if (buffer.length > 1 << 16) await flush();
  }
  await flush();
  if (typeof out === 'string') {
    stream.end();
    await once(stream, 'finish');
  }
  return { lines };
}

/** Writes lines (e.g. a generator's) as NDJSON to a path or stream. */
export async function writeHistoryLines(
  lines: AsyncIterable<HistoryLine> | Iterable<HistoryLine>,
  out: string | Writable,
): Promise<number> {
  const stream = typeof out === 'string' ? createWriteStream(out, { encoding: 'utf8' }) : out;
  let n = 0;
  let buffer = '';
  for await (const line of lines) {
    buffer += `${JSON.stringify(line)}\n`;
    n++;
    if (buffer.length > 1 << 16) {
      const ok = stream.write(buffer);
      buffer = '';
      if (!ok) await once(stream, 'drain');
    }
  }
  if (buffer.length > 0) stream.write(buffer);
  if (typeof out === 'string') {
    stream.end();
    await once(stream, 'finish');
  }
  return n;
}

type DetectionRecord = Extract<HistoryRecord, { type: 'detection' }>;

/** Why a second detection with an earlier one's `source` + `id` is refused, or undefined for a re-delivery. */
function conflictReason(
  original: DetectionRecord,
  again: DetectionRecord,
): 'other_identity' | 'different_content' | undefined {
  if (original.ix !== again.ix) return 'other_identity';
  return canonicalJson(original.detection) !== canonicalJson(again.detection)
    ? 'different_content'
    : undefined;
}
