/**
 * OpenID Shared Signals: Security Event Tokens (RFC 8417) carrying CAEP and RISC events.
 * Specs: RFC 8417 (SET: iss, iat, jti, aud, events, txn, toe), RFC 9493 (Subject Identifiers: email,
 * phone_number, iss_sub, opaque, account, did, uri, aliases), OpenID Shared Signals Framework 1.0
 * (`sub_id` claim, complex subjects: user, device, session, application, tenant, org_unit, group),
 * OpenID CAEP 1.0 (session-revoked, credential-change, token-claims-change, assurance-level-change,
 * device-compliance-change, risk-level-change; event_timestamp, initiating_entity, reason_admin,
 * reason_user), OpenID RISC 1.0 (account-disabled, credential-compromise,
 * account-credential-change-required, account-purged, account-enabled, identifier-changed, ...).
 *
 * Input: a compact JWS string, or an object of already-decoded claims. With a JWKS configured the
 * signature is verified (and a record that cannot be verified is rejected); without one the token is
 * decoded unverified and `evidence.signatureVerified` is false.
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type {
  DetectionKind,
  IdentityRef,
  IdentityType,
  NormalizedDetection,
  Severity,
} from '../../../schemas/detection.ts';
import { CAEP, RISC } from '../../../schemas/shared-signals.ts';
import type { Normalizer, SetOptions } from './normalizer.ts';
import {
  at,
  checkId,
  clip,
  compact,
  conf,
  describe,
  fail,
  identity,
  isObj,
  type Obj,
  optNumber,
  optObj,
  optString,
  providerName,
  RISK_LEVEL_SEVERITY,
  reqString,
  toIso,
  token,
} from './util.ts';

export const COMPACT_JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function isSetClaims(r: Obj): boolean {
  return (
    isObj(r.events) &&
    (r.iss !== undefined || r.jti !== undefined) &&
    Object.keys(r.events).some((k) => k.includes(':'))
  );
}

interface EventRule {
  kind: DetectionKind;
  confidence: number;
  severity: Severity;
  rank: number;
}

/** Event type → mapping; `rank` picks the event a multi-event SET is filed under (highest first). */
const EVENT_RULES: Record<string, EventRule> = {
  [`${RISC}credential-compromise`]: { kind: 'known_compromise', confidence: 0.9, severity: 'high', rank: 9 },
  [`${RISC}account-disabled`]: { kind: 'other', confidence: 0.5, severity: 'medium', rank: 7 },
  [`${RISC}account-credential-change-required`]: {
    kind: 'credential_abuse',
    confidence: 0.6,
    severity: 'medium',
    rank: 6,
  },
  [`${CAEP}session-revoked`]: { kind: 'anomalous_token_use', confidence: 0.7, severity: 'medium', rank: 8 },
  [`${CAEP}credential-change`]: { kind: 'other', confidence: 0.5, severity: 'low', rank: 5 },
  [`${CAEP}risk-level-change`]: { kind: 'other', confidence: 0.5, severity: 'medium', rank: 4 },
  [`${CAEP}token-claims-change`]: { kind: 'other', confidence: 0.3, severity: 'low', rank: 3 },
  [`${CAEP}assurance-level-change`]: { kind: 'other', confidence: 0.3, severity: 'low', rank: 3 },
  [`${CAEP}device-compliance-change`]: { kind: 'other', confidence: 0.4, severity: 'low', rank: 3 },
  [`${RISC}account-purged`]: { kind: 'other', confidence: 0.3, severity: 'info', rank: 2 },
  [`${RISC}account-enabled`]: { kind: 'other', confidence: 0.2, severity: 'info', rank: 1 },
  [`${RISC}identifier-changed`]: { kind: 'other', confidence: 0.2, severity: 'info', rank: 1 },
  [`${RISC}identifier-recycled`]: { kind: 'other', confidence: 0.2, severity: 'info', rank: 1 },
  [`${RISC}recovery-activated`]: { kind: 'other', confidence: 0.3, severity: 'low', rank: 1 },
  [`${RISC}recovery-information-changed`]: { kind: 'other', confidence: 0.3, severity: 'low', rank: 1 },
};

/** Decodes (and with keys, verifies) the record into SET claims. */
async function claimsOf(
  record: unknown,
  opts: SetOptions,
): Promise<{ claims: Obj; verified: boolean; alg?: string; kid?: string }> {
  if (typeof record === 'string') {
    const jwt = record.trim();
    if (!COMPACT_JWT.test(jwt))
      return fail('invalid SET: not a compact JWT (expected three base64url segments)');
    let header: { alg?: string; kid?: string; typ?: string };
    try {
      header = decodeProtectedHeader(jwt);
    } catch (e) {
      return fail(`invalid SET: JWT header could not be decoded: ${(e as Error).message}`);
    }
    if (opts.setKeys) {
      try {
        const { payload } = await jwtVerify(jwt, createLocalJWKSet(opts.setKeys), {
          ...(opts.setIssuer !== undefined ? { issuer: opts.setIssuer } : {}),
          ...(opts.setAudience !== undefined ? { audience: opts.setAudience } : {}),
        });
        return { claims: payload as Obj, verified: true, ...algKid(header) };
      } catch (e) {
        const err = e as { code?: string; message?: string };
        return fail(`SET signature verification failed (${err.code ?? 'ERR'}): ${err.message ?? String(e)}`, {
          code: err.code,
        });
      }
    }
    try {
      return { claims: decodeJwt(jwt) as Obj, verified: false, ...algKid(header) };
    } catch (e) {
      return fail(`invalid SET: JWT payload could not be decoded: ${(e as Error).message}`);
    }
  }
  if (!isObj(record))
    return fail(`invalid SET: expected a compact JWT string or a claims object, got ${describe(record)}`);
  if (opts.setKeys)
    return fail(
      'SET signature cannot be verified: keys are configured but the record is decoded claims, not a signed JWT',
    );
  return { claims: record, verified: false };
}

function algKid(h: { alg?: string; kid?: string }): { alg?: string; kid?: string } {
  return {
    ...(typeof h.alg === 'string' ? { alg: h.alg } : {}),
    ...(typeof h.kid === 'string' ? { kid: h.kid } : {}),
  };
}

async function normalizeSet(record: unknown, opts: SetOptions = {}): Promise<NormalizedDetection> {
  const { claims, verified, alg, kid } = await claimsOf(record, opts);
  const iss = reqString(claims.iss, 'iss');
  const jti = checkId(reqString(claims.jti, 'jti', true), 'jti');
  if (opts.setIssuer !== undefined && iss !== opts.setIssuer)
    return fail(`unexpected SET issuer '${clip(iss, 80)}' (expected '${opts.setIssuer}')`);
  const aud = claims.aud;
  if (
    opts.setAudience !== undefined &&
    !(aud === opts.setAudience || (Array.isArray(aud) && aud.includes(opts.setAudience)))
  )
    return fail(`unexpected SET audience (expected '${opts.setAudience}')`);
  const events = optObj(claims.events, 'events') ?? fail('missing events');
  const types = Object.keys(events);
  if (types.length === 0) return fail('invalid events: no event in the SET');
  for (const t of types)
    if (!isObj(events[t]))
      return fail(`invalid events['${clip(t, 100)}']: expected object, got ${describe(events[t])}`);

  // The event the detection is filed under: the strongest known one, else the first.
  const known = types
    .filter((t) => at(EVENT_RULES, t) !== undefined)
    .sort((a, b) => at(EVENT_RULES, b)!.rank - at(EVENT_RULES, a)!.rank);
  const eventType = known[0] ?? types[0]!;
  const event = events[eventType] as Obj;
  let rule: EventRule = at(EVENT_RULES, eventType) ?? {
    kind: 'other',
    confidence: 0.3,
    severity: 'low',
    rank: 0,
  };

  const reason = optString(event.reason, 'event.reason');
  if (eventType === `${RISC}account-disabled` && reason === 'hijacking')
    rule = { ...rule, kind: 'known_compromise', confidence: 0.9, severity: 'high' };
  let severity = rule.severity;
  const currentLevel = optString(event.current_level, 'event.current_level');
  if (eventType === `${CAEP}risk-level-change` && currentLevel !== undefined)
    severity = at(RISK_LEVEL_SEVERITY, currentLevel.toUpperCase()) ?? severity;

  const issuerHost = hostOf(iss);
  const subject =
    claims.sub_id ??
    event.subject ??
    (claims.sub !== undefined ? { format: 'iss_sub', iss, sub: claims.sub } : undefined);
  const ident = setIdentity(subject, issuerHost, iss);
  const ts = optNumber(event.event_timestamp, 'event.event_timestamp');
  const occurredAt =
    ts !== undefined
      ? toIso(ts, 'event.event_timestamp')
      : toIso(claims.iat ?? fail('missing iat and event_timestamp'), 'iat', 's');
  const shortType = eventType.slice(eventType.lastIndexOf('/') + 1);

  return {
    id: jti,
    source: `set:${token(issuerHost)}`,
    kind: rule.kind,
    confidence: conf(rule.confidence),
    severity,
    identity: ident,
    occurredAt,
    title: `${eventType.startsWith(RISC) ? 'RISC' : eventType.startsWith(CAEP) ? 'CAEP' : 'SET'} ${shortType}`,
    evidence: compact({
      signatureVerified: verified,
      alg,
      kid,
      ruleName: shortType,
      eventType,
      eventTypes: types,
      issuer: iss,
      txn: optString(claims.txn, 'txn', true),
      reason,
      reasonAdmin: reasonText(event.reason_admin),
      reasonUser: reasonText(event.reason_user),
      initiatingEntity: optString(event.initiating_entity, 'event.initiating_entity'),
      credentialType: optString(event.credential_type, 'event.credential_type'),
      changeType: optString(event.change_type, 'event.change_type'),
      currentLevel,
      previousLevel: optString(event.previous_level, 'event.previous_level'),
    }),
    raw: record,
  };
}

function hostOf(iss: string): string {
  try {
    return new URL(iss).host || iss;
  } catch {
    return iss;
  }
}

/** reason_admin / reason_user are either a string or a map of language tag → text; English preferred. */
function reasonText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObj(v)) {
    const en = v.en ?? Object.values(v).find((x) => typeof x === 'string');
    return typeof en === 'string' ? en : undefined;
  }
  return undefined;
}

/** Complex-subject members in the order that names the identity to act on. */
const COMPLEX_MEMBERS: ReadonlyArray<[string, IdentityType]> = [
  ['user', 'human'],
  ['application', 'oauth_app'],
  ['session', 'human'],
  ['device', 'workload'],
];

function setIdentity(subject: unknown, issuerHost: string, iss: string): IdentityRef {
  if (subject === undefined || subject === null)
    return fail('missing identity: none of sub_id, events[…].subject, sub present');
  const s = optObj(subject, 'sub_id') ?? fail('invalid sub_id');
  const format = optString(s.format, 'sub_id.format');
  if (format === 'complex' || (format === undefined && COMPLEX_MEMBERS.some(([m]) => isObj(s[m])))) {
    const tenant = simpleId(s.tenant, 'sub_id.tenant', issuerHost, iss)?.id;
    for (const [member, type] of COMPLEX_MEMBERS) {
      if (s[member] === undefined) continue;
      const inner = simpleId(s[member], `sub_id.${member}`, issuerHost, iss);
      if (inner)
        return identity(inner.provider, inner.id, inner.type ?? type, { tenant, displayName: inner.display });
    }
    return fail('missing identity: complex subject has no user, application, session or device identifier');
  }
  const simple = simpleId(s, 'sub_id', issuerHost, iss);
  if (!simple) return fail(`missing identity: subject format '${format ?? 'absent'}' carries no identifier`);
  return identity(simple.provider, simple.id, simple.type ?? 'human', { displayName: simple.display });
}

/** One RFC 9493 subject identifier → (provider, id). */
function simpleId(
  v: unknown,
  path: string,
  issuerHost: string,
  iss: string,
): { provider: string; id: string; type?: IdentityType; display?: string } | undefined {
  if (v === undefined || v === null) return undefined;
  const s = optObj(v, path)!;
  const format = reqString(s.format, `${path}.format`);
  const provider = providerName(issuerHost) ?? 'unknown';
  switch (format) {
    case 'email': {
      const email = reqString(s.email, `${path}.email`);
      return { provider, id: email.toLowerCase(), display: email };
    }
    case 'phone_number':
      return { provider, id: reqString(s.phone_number, `${path}.phone_number`) };
    case 'iss_sub': {
      const subIss = reqString(s.iss, `${path}.iss`);
      const sub = reqString(s.sub, `${path}.sub`, true);
      return { provider: subIss === iss ? provider : (providerName(hostOf(subIss)) ?? 'unknown'), id: sub };
    }
    case 'opaque':
      return { provider, id: reqString(s.id, `${path}.id`, true) };
    case 'account': {
      const uri = reqString(s.uri, `${path}.uri`);
      return { provider, id: uri.replace(/^acct:/, '') };
    }
    case 'did':
      return { provider, id: reqString(s.url, `${path}.url`) };
    case 'uri': {
      const uri = reqString(s.uri, `${path}.uri`);
      return { provider, id: uri, ...(uri.startsWith('spiffe://') ? { type: 'workload' as const } : {}) };
    }
    case 'aliases': {
      const ids = Array.isArray(s.identifiers)
        ? s.identifiers
        : fail(`invalid ${path}.identifiers: expected array`);
      for (const [i, alias] of ids.entries()) {
        const r = simpleId(alias, `${path}.identifiers[${i}]`, issuerHost, iss);
        if (r) return r;
      }
      return undefined;
    }
    default:
      return fail(`unsupported subject identifier format '${clip(format, 40)}' at ${path}`);
  }
}

export const set: Normalizer<'set'> = {
  name: 'set',
  detect: isSetClaims,
  detectText: (r) => COMPACT_JWT.test(r.trim()),
  normalize: (r, opts) => normalizeSet(r, opts),
};
