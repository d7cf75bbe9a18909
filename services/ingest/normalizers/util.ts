/**
 * Shared helpers for the normalizers: safe field access over untrusted JSON, typed getters that fail
 * with a precise NORMALIZE_FAILED reason, timestamp parsing, and the mapping tables several formats
 * share (MITRE technique → kind, text → kind, provider names, AWS principal classification).
 */

import { TourniquetError } from '../../../platform/errors.ts';
import type { DetectionKind, IdentityRef, IdentityType, Severity } from '../../../schemas/detection.ts';

export type Obj = Record<string, unknown>;

/** The error every normalizer raises for a record it cannot turn into a detection. */
export function fail(reason: string, details: Record<string, unknown> = {}): never {
  throw new TourniquetError('NORMALIZE_FAILED', reason, { status: 400, details: { reason, ...details } });
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Own property only: `constructor`, `__proto__` and friends never leak in from the prototype. */
export function own(o: unknown, key: string): unknown {
  if (!isObj(o) || !Object.hasOwn(o, key)) return undefined;
  return o[key];
}

/**
 * Looks a dotted path up in an object whose keys may be nested (`{a:{b:1}}`), dotted-flat (`{"a.b":1}`)
 * or any mix (`{"a":{"b.c":1}}`), as Elasticsearch documents are. Longest key prefix wins.
 */
export function lookup(o: unknown, path: string): unknown {
  return lookupSegments(o, path.split('.'));
}

function lookupSegments(o: unknown, segs: string[]): unknown {
  if (!isObj(o)) return undefined;
  for (let i = segs.length; i >= 1; i--) {
    const key = segs.slice(0, i).join('.');
    if (!Object.hasOwn(o, key)) continue;
    const v = o[key];
    if (i === segs.length) return v;
    const rest = lookupSegments(v, segs.slice(i));
    if (rest !== undefined) return rest;
  }
  return undefined;
}

/** Plain nested path (no dotted keys): `get(o, 'detail.resource.accessKeyDetails')`. */
export function get(o: unknown, path: string): unknown {
  let cur: unknown = o;
  for (const seg of path.split('.')) {
    cur = own(cur, seg);
    if (cur === undefined) return undefined;
  }
  return cur;
}

/**
 * Optional string field: absent, null and '' are undefined; anything else but a string is a wrong type
 * and rejects the record. `lenient` also accepts a finite number as its decimal text, for identifiers
 * and for sources (Splunk, Elasticsearch) whose exports type values loosely.
 */
export function optString(v: unknown, field: string, lenient = false): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') {
    const t = v.trim();
    return t === '' ? undefined : t;
  }
  if (lenient && typeof v === 'number' && Number.isFinite(v)) return String(v);
  return fail(`invalid ${field}: expected string, got ${describe(v)}`, { field });
}

/** An identifier: a string, or a number taken as its decimal text. */
export function optId(v: unknown, field: string): string | undefined {
  return optString(v, field, true);
}

export function reqString(v: unknown, field: string, lenient = false): string {
  const s = optString(v, field, lenient);
  if (s === undefined) return fail(`missing ${field}`, { field });
  return s;
}

export function reqId(v: unknown, field: string): string {
  return reqString(v, field, true);
}

/** Optional number: numeric strings are accepted (Splunk sends every value as a string). */
export function optNumber(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return fail(`invalid ${field}: not a finite number`, { field });
    return v;
  }
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return fail(
    `invalid ${field}: expected number, got ${describe(v)}${typeof v === 'string' ? ` '${clip(v, 40)}'` : ''}`,
    {
      field,
    },
  );
}

export function optObj(v: unknown, field: string): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) return fail(`invalid ${field}: expected object, got ${describe(v)}`, { field });
  return v;
}

export function optArray(v: unknown, field: string): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) return fail(`invalid ${field}: expected array, got ${describe(v)}`, { field });
  return v;
}

/** Optional boolean; the strings "true"/"false" (as Okta's debugData carries them) are accepted. */
export function optBool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  return fail(`invalid ${field}: expected boolean, got ${describe(v)}`, { field });
}

/** Strings from a value that may be a string or an array of strings (ECS multi-values); others ignored. */
export function strings(v: unknown): string[] {
  if (typeof v === 'string') return v.trim() === '' ? [] : [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string' && x.trim() !== '');
  return [];
}

const MIN_MS = Date.UTC(1970, 0, 1);
const MAX_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * Any timestamp a source may send → RFC 3339 UTC. Numbers (and numeric strings) below 1e11 are epoch
 * seconds, above are epoch milliseconds; strings are ISO 8601 (a string without a zone is read as UTC).
 */
export function toIso(v: unknown, field: string, unit: 'auto' | 's' | 'ms' = 'auto'): string {
  let ms: number;
  if (typeof v === 'number' || (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v))) {
    const n = Number(v);
    if (!Number.isFinite(n)) return fail(`invalid ${field}: not a finite number`, { field });
    const asMs = unit === 'ms' || (unit === 'auto' && Math.abs(n) >= 1e11);
    ms = asMs ? n : n * 1000;
  } else if (typeof v === 'string') {
    let s = v.trim();
    if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) s = `${s.replace(' ', 'T')}Z`;
    ms = Date.parse(s);
    if (Number.isNaN(ms)) return fail(`invalid ${field}: '${clip(v, 40)}' is not a timestamp`, { field });
  } else if (v === undefined || v === null) {
    return fail(`missing ${field}`, { field });
  } else {
    return fail(`invalid ${field}: expected timestamp, got ${describe(v)}`, { field });
  }
  if (ms < MIN_MS || ms > MAX_MS) return fail(`invalid ${field}: timestamp out of range`, { field });
  return new Date(Math.floor(ms)).toISOString();
}

export function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function clamp01(n: number): number {
  if (!Number.isFinite(n)) return 0;
  return Math.min(1, Math.max(0, n));
}

/** Rounds to 2 decimals so mapped confidences stay readable in events and tests. */
export function conf(n: number): number {
  return Math.round(clamp01(n) * 100) / 100;
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };
export function maxSeverity(a: Severity, b: Severity): Severity {
  return SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b;
}

/** Drops undefined, null, '' and empty arrays so evidence carries only what the source said. */
export function compact(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out;
}

/** A source-unique id must fit the schema; it is never truncated (truncation would merge detections). */
export function checkId(id: string, field: string): string {
  if (id.length > 512) return fail(`invalid ${field}: longer than 512 characters`, { field });
  return id;
}

/** Lower-case, `[a-z0-9_.-]` only: a stable token for `source` suffixes and provider names. */
export function token(s: string, max = 100): string {
  const t = s
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return (t === '' ? 'unknown' : t).slice(0, max);
}

/** Maps a vendor / product / IdP name to the provider names the executor knows. */
export function providerName(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const s = raw.toLowerCase();
  if (s.includes('okta')) return 'okta';
  if (
    s.includes('entra') ||
    s.includes('azure') ||
    s.includes('microsoft') ||
    s === 'aad' ||
    s.includes('o365')
  )
    return 'entra';
  if (s.includes('aws') || s.includes('amazon')) return 'aws';
  if (s.includes('github')) return 'github';
  if (s.includes('google') || s === 'gcp' || s.includes('workspace')) return 'gcp';
  if (s.includes('keycloak')) return 'keycloak';
  return token(raw, 128);
}

export function identity(
  provider: string,
  id: string,
  type: IdentityType,
  extra: { tenant?: string | undefined; displayName?: string | undefined } = {},
): IdentityRef {
  if (id.length > 512) return fail('invalid identity id: longer than 512 characters');
  const ref: IdentityRef = { provider: provider.slice(0, 128) || 'unknown', id, type };
  if (extra.tenant !== undefined) ref.tenant = extra.tenant.slice(0, 256);
  if (extra.displayName !== undefined && extra.displayName !== id)
    ref.displayName = clip(extra.displayName, 512);
  return ref;
}

/** AWS principal classification shared by GuardDuty, OCSF (Security Lake) and Elastic (CloudTrail). */
export function awsUserType(t: string | undefined): IdentityType | undefined {
  switch (t) {
    case 'Root':
    case 'IAMUser':
    case 'FederatedUser':
    case 'IdentityCenterUser':
      return 'human';
    case 'AssumedRole':
    case 'Role':
      return 'service_account';
    case 'AWSService':
    case 'AWSAccount':
      return 'workload';
    default:
      return undefined;
  }
}

/** An ARN or principal string tells roles from users. */
export function classifyPrincipal(s: string): IdentityType | undefined {
  if (/^arn:aws[a-z-]*:(iam|sts)::\d*:(role|assumed-role)\//.test(s)) return 'service_account';
  if (/^arn:aws[a-z-]*:(iam|sts)::\d*:(user|root|federated-user)/.test(s)) return 'human';
  if (/^spiffe:\/\//.test(s)) return 'workload';
  if (/^system:serviceaccount:/.test(s)) return 'workload';
  return undefined;
}

/** Long-term AWS access key ids start with AKIA; temporary (STS) ones with ASIA. */
export function isLongTermAwsKey(s: string | undefined): boolean {
  return s !== undefined && /^AKIA[A-Z0-9]{12,}$/.test(s);
}

/** MITRE ATT&CK technique → kind. Sub-techniques fall back to their parent. */
const MITRE_KIND: Record<string, DetectionKind> = {
  T1621: 'mfa_fatigue', // Multi-Factor Authentication Request Generation
  'T1550.001': 'anomalous_token_use', // Application Access Token
  'T1550.004': 'anomalous_token_use', // Web Session Cookie
  T1550: 'anomalous_token_use', // Use Alternate Authentication Material
  T1539: 'anomalous_token_use', // Steal Web Session Cookie
  T1528: 'anomalous_token_use', // Steal Application Access Token
  T1606: 'anomalous_token_use', // Forge Web Credentials
  T1552: 'secret_exposure', // Unsecured Credentials
  'T1552.001': 'secret_exposure',
  'T1552.004': 'secret_exposure',
  'T1552.005': 'anomalous_token_use', // Cloud Instance Metadata API
  T1110: 'credential_abuse', // Brute Force (incl. password spraying, stuffing)
  T1078: 'credential_abuse', // Valid Accounts
  T1098: 'privilege_escalation', // Account Manipulation
  T1068: 'privilege_escalation',
  T1484: 'privilege_escalation', // Domain or Tenant Policy Modification
  T1548: 'privilege_escalation', // Abuse Elevation Control Mechanism
  T1087: 'suspicious_api_use', // Account Discovery
  T1580: 'suspicious_api_use', // Cloud Infrastructure Discovery
  T1526: 'suspicious_api_use', // Cloud Service Discovery
  T1069: 'suspicious_api_use', // Permission Groups Discovery
  T1530: 'suspicious_api_use', // Data from Cloud Storage
};

export function kindFromMitre(techniques: readonly string[]): DetectionKind | undefined {
  for (const raw of techniques) {
    const t = raw.trim().toUpperCase();
    const k = at(MITRE_KIND, t) ?? at(MITRE_KIND, t.split('.')[0]);
    if (k) return k;
  }
  return undefined;
}

/** Ordered: the first pattern that matches a rule name / title decides. */
const TEXT_KIND: ReadonlyArray<[RegExp, DetectionKind]> = [
  [
    /impossible[\s_-]*travel|unlikely[\s_-]*travel|atypical[\s_-]*travel|geographically[\s_-]*improbable|improbable[\s_-]*travel|superman/i,
    'impossible_travel',
  ],
  [
    /mfa[\s_-]*(fatigue|bomb|flood|spam|push[\s_-]*(spam|flood|bomb))|push[\s_-]*(fatigue|bomb|spam)|deny[\s_-]*push|mfa[\s_-]*request[\s_-]*generation|multiple[\s_-]*mfa[\s_-]*(denied|deny|rejections)/i,
    'mfa_fatigue',
  ],
  [
    /secret[\s_-]*(exposed|exposure|leak|scanning)|leaked[\s_-]*(secret|credential|key|password)|credentials?[\s_-]*(leak|exposed|exposure)|exposed[\s_-]*(secret|credential|access[\s_-]*key)/i,
    'secret_exposure',
  ],
  [
    /anomalous[\s_-]*token|token[\s_-]*(theft|replay|reuse|hijack|issuer[\s_-]*anomaly)|session[\s_-]*(hijack|roaming|cookie|replay|theft)|stolen[\s_-]*(token|session|cookie)|credential[\s_-]*exfiltration|instance[\s_-]*credential/i,
    'anomalous_token_use',
  ],
  [
    /privilege[\s_-]*escalation|escalat|admin[\s_-]*(role|privilege)[\s_-]*(grant|assign|add)|role[\s_-]*assign|impersonation/i,
    'privilege_escalation',
  ],
  [
    /confirmed[\s_-]*compromis|compromised[\s_-]*(user|account|credential)|known[\s_-]*(compromise|bad)|threat[\s_-]*intel/i,
    'known_compromise',
  ],
  [
    /brute[\s_-]*force|password[\s_-]*spray|credential[\s_-]*stuffing|password[\s_-]*guess|malicious[\s_-]*ip|anonymi[sz]ed[\s_-]*ip|anonymous[\s_-]*ip|tor[\s_-]*(exit|ip)|unfamiliar[\s_-]*sign|suspicious[\s_-]*(sign|login|logon)/i,
    'credential_abuse',
  ],
  [/\bapi\b|enumerat|discovery|reconnaissance|recon\b|unusual[\s_-]*(api|call)/i, 'suspicious_api_use'],
];

export function kindFromText(...texts: Array<string | undefined>): DetectionKind | undefined {
  for (const t of texts) {
    if (t === undefined) continue;
    for (const [re, k] of TEXT_KIND) if (re.test(t)) return k;
  }
  return undefined;
}

/** The common name → severity table (Elastic, Graph, Splunk urgency, OCSF `severity` caption). */
export function severityFromName(s: string | undefined): Severity | undefined {
  switch (s?.toLowerCase()) {
    case 'informational':
    case 'info':
    case 'information':
      return 'info';
    case 'low':
      return 'low';
    case 'medium':
    case 'moderate':
      return 'medium';
    case 'high':
      return 'high';
    case 'critical':
    case 'fatal':
      return 'critical';
    default:
      return undefined;
  }
}

/** Risk level in upper case (LOW, MEDIUM, HIGH: Okta's debugContext risk, CAEP risk-level-change) → severity. */
export const RISK_LEVEL_SEVERITY: Readonly<Record<string, Severity>> = {
  LOW: 'low',
  MEDIUM: 'medium',
  HIGH: 'high',
};

/** Table lookup by an untrusted key: own entries only (`constructor`, `__proto__` are not entries). */
export function at<T>(table: Readonly<Record<string, T>>, key: string | number | undefined): T | undefined {
  if (key === undefined) return undefined;
  const k = String(key);
  return Object.hasOwn(table, k) ? table[k] : undefined;
}
