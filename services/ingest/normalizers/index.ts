/**
 * Normalizers: real SIEM / IdP detection formats → NormalizedDetection (schemas/detection.ts).
 * Mapping tables and the vendor documents followed: docs/normalizers.md.
 */
import type { JSONWebKeySet } from 'jose';
import { issuesFromZod, TourniquetError } from '../../../platform/errors.ts';
import { type NormalizedDetection, safeParseDetection } from '../../../schemas/detection.ts';
import { elasticDoc, normalizeElastic } from './elastic.ts';
import { isEntraRisk, normalizeEntraRisk } from './entra-risk.ts';
import { isGitHubSecretScanning, normalizeGitHubSecretScanning } from './github-secret-scanning.ts';
import { isGraphAlert, normalizeGraphAlert } from './graph-alert.ts';
import { isGuardDuty, normalizeGuardDuty } from './guardduty.ts';
import { isOcsfDetectionFinding, normalizeOcsf } from './ocsf.ts';
import { isOkta, normalizeOkta } from './okta.ts';
import { COMPACT_JWT, isSetClaims, normalizeSet } from './set.ts';
import { isSplunkNotable, normalizeSplunkNotable } from './splunk-notable.ts';
import { describe, fail, isObj, type Obj } from './util.ts';

export { parseRecords } from './records.ts';

export type FormatName =
  | 'ocsf'
  | 'elastic'
  | 'graph_alert'
  | 'entra_risk'
  | 'okta'
  | 'guardduty'
  | 'github_secret_scanning'
  | 'splunk_notable'
  | 'set';

export const FORMATS: readonly FormatName[] = Object.freeze([
  'ocsf',
  'elastic',
  'graph_alert',
  'entra_risk',
  'okta',
  'guardduty',
  'github_secret_scanning',
  'splunk_notable',
  'set',
] as const);

export function isFormatName(s: string): s is FormatName {
  return (FORMATS as readonly string[]).includes(s);
}

export interface NormalizeOptions {
  format?: FormatName | 'auto';
  /** A JWKS (jose `JSONWebKeySet`): when set, SETs must carry a valid signature from one of its keys. */
  setKeys?: JSONWebKeySet;
  setIssuer?: string;
  setAudience?: string;
}

/** Shape tests, most specific first: each looks at fields only its format has. */
const DETECTORS: ReadonlyArray<[FormatName, (r: Obj) => boolean]> = [
  ['ocsf', isOcsfDetectionFinding],
  ['guardduty', isGuardDuty],
  ['github_secret_scanning', isGitHubSecretScanning],
  ['set', isSetClaims],
  ['graph_alert', isGraphAlert],
  ['entra_risk', isEntraRisk],
  ['okta', isOkta],
  ['elastic', (r) => elasticDoc(r) !== undefined],
  ['splunk_notable', isSplunkNotable],
];

/** The format a record is in, from its shape; undefined when none fits. */
export function detectFormat(record: unknown): FormatName | undefined {
  if (typeof record === 'string') return COMPACT_JWT.test(record.trim()) ? 'set' : undefined;
  if (!isObj(record)) return undefined;
  for (const [name, test] of DETECTORS) if (test(record)) return name;
  return undefined;
}

type SyncNormalizer = (r: Obj) => NormalizedDetection;
const SYNC: Record<Exclude<FormatName, 'set'>, SyncNormalizer> = {
  ocsf: normalizeOcsf,
  elastic: normalizeElastic,
  graph_alert: normalizeGraphAlert,
  entra_risk: normalizeEntraRisk,
  okta: normalizeOkta,
  guardduty: normalizeGuardDuty,
  github_secret_scanning: normalizeGitHubSecretScanning,
  splunk_notable: normalizeSplunkNotable,
};

/**
 * One record → one validated NormalizedDetection. Throws TourniquetError NORMALIZE_FAILED (status 400,
 * `details.reason`) for a record that cannot be normalized, and nothing else.
 */
export async function normalize(record: unknown, opts: NormalizeOptions = {}): Promise<NormalizedDetection> {
  const requested = opts.format ?? 'auto';
  const format = requested === 'auto' ? detectFormat(record) : requested;
  if (format === undefined) {
    return fail(
      isObj(record) || typeof record === 'string'
        ? 'unrecognized record: matches none of the known formats (ocsf, elastic, graph_alert, entra_risk, okta, guardduty, github_secret_scanning, splunk_notable, set)'
        : `record is not a JSON object (got ${describe(record)})`,
    );
  }
  if (!isFormatName(format)) return fail(`unknown format '${String(format)}'`);
  let out: NormalizedDetection;
  try {
    if (format === 'set') {
      out = await normalizeSet(record, {
        ...(opts.setKeys !== undefined ? { setKeys: opts.setKeys } : {}),
        ...(opts.setIssuer !== undefined ? { setIssuer: opts.setIssuer } : {}),
        ...(opts.setAudience !== undefined ? { setAudience: opts.setAudience } : {}),
      });
    } else {
      if (!isObj(record)) return fail(`record is not a JSON object (got ${describe(record)})`, { format });
      out = SYNC[format](record);
    }
  } catch (e) {
    if (e instanceof TourniquetError) {
      if (e.details?.format === undefined) throw withFormat(e, format);
      throw e;
    }
    // A normalizer bug must not take the stream down: report it as this record's rejection.
    throw new TourniquetError(
      'NORMALIZE_FAILED',
      `${format}: internal normalizer error: ${(e as Error)?.message ?? String(e)}`,
      {
        status: 400,
        details: { format, reason: 'internal normalizer error' },
        cause: e,
      },
    );
  }
  const parsed = safeParseDetection(out);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error.issues);
    return fail(
      `normalized detection is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      {
        format,
        issues,
      },
    );
  }
  return parsed.data;
}

function withFormat(e: TourniquetError, format: FormatName): TourniquetError {
  return new TourniquetError(e.code, `${format}: ${e.message}`, {
    status: e.status,
    retriable: e.retriable,
    details: { ...(e.details ?? {}), format },
    cause: e.cause,
  });
}
