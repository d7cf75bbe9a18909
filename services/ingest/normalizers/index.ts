/**
 * Normalizers: real SIEM / IdP detection formats → NormalizedDetection (schemas/detection.ts).
 * Mapping tables and the vendor documents followed: docs/normalizers.md.
 */
import type { JSONWebKeySet } from 'jose';
import { issuesFromZod, TourniquetError } from '../../../platform/errors.ts';
import { type NormalizedDetection, safeParseDetection } from '../../../schemas/detection.ts';
import { elastic } from './elastic.ts';
import { entraRisk } from './entra-risk.ts';
import { githubSecretScanning } from './github-secret-scanning.ts';
import { graphAlert } from './graph-alert.ts';
import { guardDuty } from './guardduty.ts';
import type { Normalizer } from './normalizer.ts';
import { ocsf } from './ocsf.ts';
import { okta } from './okta.ts';
import { set } from './set.ts';
import { splunkNotable } from './splunk-notable.ts';
import { describe, fail, isObj } from './util.ts';

/**
 * Every source format, in the order `detectFormat` tries them: most specific first (each looks at
 * fields only its format has). Adding a format is a file exporting a Normalizer plus a line here.
 */
const NORMALIZERS = [
  ocsf,
  guardDuty,
  githubSecretScanning,
  set,
  graphAlert,
  entraRisk,
  okta,
  elastic,
  splunkNotable,
] as const satisfies readonly Normalizer[];

export type FormatName = (typeof NORMALIZERS)[number]['name'];

export const FORMATS: readonly FormatName[] = Object.freeze(NORMALIZERS.map((n) => n.name));

const BY_NAME: ReadonlyMap<string, Normalizer> = new Map(NORMALIZERS.map((n) => [n.name, n]));

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

/** The format a record is in, from its shape; undefined when none fits. */
export function detectFormat(record: unknown): FormatName | undefined {
  if (typeof record === 'string')
    return (NORMALIZERS as readonly Normalizer<FormatName>[]).find((n) => n.detectText?.(record))?.name;
  if (!isObj(record)) return undefined;
  return NORMALIZERS.find((n) => n.detect(record))?.name;
}

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
        ? `unrecognized record: matches none of the known formats (${FORMATS.join(', ')})`
        : `record is not a JSON object (got ${describe(record)})`,
    );
  }
  if (!isFormatName(format)) return fail(`unknown format '${String(format)}'`);
  let out: NormalizedDetection;
  try {
    const normalizer = BY_NAME.get(format)!;
    if (!normalizer.detectText && !isObj(record))
      return fail(`record is not a JSON object (got ${describe(record)})`, { format });
    out = await normalizer.normalize(record, {
      ...(opts.setKeys !== undefined ? { setKeys: opts.setKeys } : {}),
      ...(opts.setIssuer !== undefined ? { setIssuer: opts.setIssuer } : {}),
      ...(opts.setAudience !== undefined ? { setAudience: opts.setAudience } : {}),
    });
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
