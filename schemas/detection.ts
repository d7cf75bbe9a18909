import { z } from 'zod';
import { canonicalText, checkJsonValue, isCanonicalText, jsonValueProblem } from './text.ts';

export const DETECTION_KINDS = [
  'impossible_travel',
  'anomalous_token_use',
  'secret_exposure',
  'known_compromise',
  'suspicious_api_use',
  'credential_abuse',
  'mfa_fatigue',
  'privilege_escalation',
  'other',
] as const;
export const IDENTITY_TYPES = ['human', 'service_account', 'oauth_app', 'api_key', 'workload'] as const;
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

export const DetectionKind = z.enum(DETECTION_KINDS);
export const IdentityType = z.enum(IDENTITY_TYPES);
export const Severity = z.enum(SEVERITIES);

/** RFC 3339 timestamp with a zone, as every SIEM we read can produce. */
export const Timestamp = z.iso.datetime({ offset: true });

// Identifiers, sources and identity fields: well-formed text without NUL, limits in code points
// (schemas/text.ts). Titles may hold any well-formed text.
const identityShape = {
  provider: canonicalText(1, 128),
  id: canonicalText(1, 512),
  type: IdentityType,
  /** Optional tenant (realm, org, account) for per-tenant budgets. */
  tenant: canonicalText(1, 256).optional(),
  displayName: canonicalText(0, 512).optional(),
};

export const IdentityRef = z.object(identityShape);
/** The same, refusing unknown fields by name (the HTTP API's promise). */
const StrictIdentityRef = z.strictObject(identityShape);

/**
 * `raw` and `evidence` are vendor JSON of any shape, bounded in nesting and size (schemas/text.ts,
 * configurable) and checked before anything else reads them.
 */
const JsonValue = z.unknown().superRefine(checkJsonValue);
const Evidence = z.record(z.string(), z.unknown()).superRefine(checkJsonValue);

const detectionShape = {
  /** Source-unique id: the dedupe key together with `source`. */
  id: canonicalText(1, 512),
  source: canonicalText(1, 128),
  kind: DetectionKind,
  confidence: z.number().min(0).max(1),
  severity: Severity,
  identity: IdentityRef,
  occurredAt: Timestamp,
  title: canonicalText(0, 1024, { nul: true }).optional(),
  evidence: Evidence.default({}),
  raw: JsonValue.optional(),
};

export const NormalizedDetection = z.object(detectionShape);
/** The same, refusing unknown fields (top level and identity) by name: what the HTTP API accepts. */
export const StrictNormalizedDetection = z.strictObject({ ...detectionShape, identity: StrictIdentityRef });

export type DetectionKind = z.infer<typeof DetectionKind>;
export type IdentityType = z.infer<typeof IdentityType>;
export type Severity = z.infer<typeof Severity>;
export type IdentityRef = z.infer<typeof IdentityRef>;
export type NormalizedDetection = z.infer<typeof NormalizedDetection>;
/** What callers may send: `evidence` may be omitted. */
export type NormalizedDetectionInput = z.input<typeof NormalizedDetection>;

/** The key that partitions Kafka and groups the decider: one writer per identity. */
export function identityKey(identity: Pick<IdentityRef, 'provider' | 'id'>): string {
  return `${identity.provider}:${identity.id}`;
}

const KIND_SET: ReadonlySet<string> = new Set(DETECTION_KINDS);
const TYPE_SET: ReadonlySet<string> = new Set(IDENTITY_TYPES);
const SEVERITY_SET: ReadonlySet<string> = new Set(SEVERITIES);

const isText = (v: unknown, min: number, max: number, nul = false): v is string =>
  isCanonicalText(v, min, max, nul);

/** Optional text: absent is fine; present must be text (an explicit undefined is left to zod). */
const optionalText = (o: object, key: string, v: unknown, min: number, max: number, nul = false): boolean =>
  v === undefined ? !(key in o) : isText(v, min, max, nul);

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** The decimal number in `v` from `from` to `to`, or -1 when a character there is not a digit. */
function digits(v: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** Days from 1970-01-01 to the first of month `m` (1-12) of year `y` (proleptic Gregorian). */
function daysFromCivil(y: number, m: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5);
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Epoch milliseconds of a timestamp in the canonical `toISOString()` form `YYYY-MM-DDTHH:mm:ss.sssZ`
 * naming a real instant (what every normalizer writes), read without Date; NaN for anything else.
 * Where it answers, it equals Date.parse. Parsing is most of the cost of reading a history, and the
 * decider reads event times on every decision.
 */
export function canonicalTimeMs(v: string): number {
  if (
    v.length !== 24 ||
    v.charCodeAt(4) !== 45 || // -
    v.charCodeAt(7) !== 45 ||
    v.charCodeAt(10) !== 84 || // T
    v.charCodeAt(13) !== 58 || // :
    v.charCodeAt(16) !== 58 ||
    v.charCodeAt(19) !== 46 || // .
    v.charCodeAt(23) !== 90 // Z
  ) {
    return Number.NaN;
  }
  const year = digits(v, 0, 4);
  const month = digits(v, 5, 7);
  const day = digits(v, 8, 10);
  const hour = digits(v, 11, 13);
  const minute = digits(v, 14, 16);
  const second = digits(v, 17, 19);
  const milli = digits(v, 20, 23);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return Number.NaN;
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || milli < 0) return Number.NaN;
  if (day > 28) {
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    const days =
      month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
    if (day > days) return Number.NaN;
  }
  return (
    (((daysFromCivil(year, month) + day - 1) * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli
  );
}

/** Whether `v` is a timestamp in the canonical form of a real instant (see canonicalTimeMs). */
export function isCanonicalTime(v: unknown): v is string {
  return typeof v === 'string' && !Number.isNaN(canonicalTimeMs(v));
}

/**
 * The common, plainly valid detection, checked by hand; anything else (or anything doubtful) is left
 * to zod. Returns exactly what `NormalizedDetection.parse` returns for it (same keys, same order,
 * unknown keys stripped, evidence defaulted), which a property test holds it to; undefined when it
 * cannot vouch for the value. Zod's generic walk costs several microseconds per detection, and
 * histories, Kafka consumers and the API validate millions of them.
 */
export function plainDetection(v: unknown): NormalizedDetection | undefined {
  if (!isPlainObject(v)) return undefined;
  const { id, source, kind, confidence, severity, identity, occurredAt, title, evidence, raw } = v;
  if (!isText(id, 1, 512) || !isText(source, 1, 128)) return undefined;
  if (typeof kind !== 'string' || !KIND_SET.has(kind)) return undefined;
  if (typeof confidence !== 'number' || !(confidence >= 0 && confidence <= 1)) return undefined;
  if (typeof severity !== 'string' || !SEVERITY_SET.has(severity)) return undefined;
  if (!isPlainObject(identity)) return undefined;
  const { provider, id: identityId, type, tenant, displayName } = identity;
  if (!isText(provider, 1, 128) || !isText(identityId, 1, 512)) return undefined;
  if (typeof type !== 'string' || !TYPE_SET.has(type)) return undefined;
  if (!optionalText(identity, 'tenant', tenant, 1, 256)) return undefined;
  if (!optionalText(identity, 'displayName', displayName, 0, 512)) return undefined;
  if (!isCanonicalTime(occurredAt)) return undefined;
  if (!optionalText(v, 'title', title, 0, 1024, true)) return undefined;
  if (evidence === undefined ? 'evidence' in v : !isPlainObject(evidence)) return undefined;
  if (raw === undefined && 'raw' in v) return undefined;
  if (evidence !== undefined && Object.hasOwn(evidence as object, '__proto__')) return undefined;
  if (evidence !== undefined && jsonValueProblem(evidence, 'evidence')) return undefined;
  if (raw !== undefined && jsonValueProblem(raw, 'raw')) return undefined;
  const ref: IdentityRef = { provider, id: identityId, type: type as IdentityType };
  if (tenant !== undefined) ref.tenant = tenant as string;
  if (displayName !== undefined) ref.displayName = displayName as string;
  // Keys in the order zod's output has them (stored JSON, digests and hash chains see the order).
  const out = { id, source, kind, confidence, severity, identity: ref, occurredAt } as NormalizedDetection;
  if (title !== undefined) out.title = title as string;
  out.evidence = evidence === undefined ? {} : { ...(evidence as Record<string, unknown>) };
  if (raw !== undefined) out.raw = raw;
  return out;
}

/** `NormalizedDetection.safeParse`, with a hand-checked fast path for the plainly valid common case. */
export function safeParseDetection(value: unknown): z.ZodSafeParseResult<NormalizedDetection> {
  const fast = plainDetection(value);
  if (fast) return { success: true, data: fast } as z.ZodSafeParseResult<NormalizedDetection>;
  return NormalizedDetection.safeParse(value);
}

const DETECTION_KEYS: ReadonlySet<string> = new Set(Object.keys(detectionShape));
const IDENTITY_KEYS: ReadonlySet<string> = new Set(Object.keys(identityShape));
const onlyKeys = (v: unknown, keys: ReadonlySet<string>): boolean => {
  if (!isPlainObject(v)) return true; // not an object: the schema names the problem
  for (const k in v) if (!keys.has(k)) return false;
  return true;
};

/**
 * `StrictNormalizedDetection.safeParse` (unknown fields refused by name), with the same fast path as
 * safeParseDetection when every field is known.
 */
export function safeParseStrictDetection(value: unknown): z.ZodSafeParseResult<NormalizedDetection> {
  if (
    onlyKeys(value, DETECTION_KEYS) &&
    onlyKeys((value as { identity?: unknown })?.identity, IDENTITY_KEYS)
  ) {
    const fast = plainDetection(value);
    if (fast) return { success: true, data: fast } as z.ZodSafeParseResult<NormalizedDetection>;
  }
  return StrictNormalizedDetection.safeParse(value) as z.ZodSafeParseResult<NormalizedDetection>;
}
