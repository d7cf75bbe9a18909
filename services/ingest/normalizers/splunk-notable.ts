/**
 * Splunk Enterprise Security notable events: a row of `notable` search results (bare, or exported via
 * HEC), or a Splunk webhook alert action body (`{result, sid, results_link, search_name, owner, app}`,
 * whose `result` is the first result row). Schema: Splunk ES "Notable event fields" (event_id, rule_name,
 * rule_title, security_domain, urgency, severity, orig_sid, orig_rid, risk_score, risk_object*),
 * Splunk "Use a webhook alert action", CIM Authentication/Change fields (user, src_user, src, user_type).
 * Splunk sends every value as a string; multi-value fields as arrays.
 */
import type {
  DetectionKind,
  IdentityRef,
  IdentityType,
  NormalizedDetection,
  Severity,
} from '../../../schemas/detection.ts';
import type { Normalizer } from './normalizer.ts';
import { kindFromRuleName } from './rule-names.ts';
import {
  awsUserType,
  checkId,
  classifyPrincipal,
  compact,
  conf,
  fail,
  identity,
  isObj,
  kindFromMitre,
  kindFromText,
  type Obj,
  optNumber,
  optString,
  providerName,
  severityFromName,
  strings,
  toIso,
} from './util.ts';

const NOTABLE_MARKERS = ['event_id', 'orig_sid', 'urgency', 'security_domain', 'rule_id', 'orig_rid'];

function looksNotable(o: Obj): boolean {
  const named = o.rule_name !== undefined || o.search_name !== undefined || o.rule_title !== undefined;
  return named && NOTABLE_MARKERS.some((k) => Object.hasOwn(o, k));
}

function isSplunkNotable(r: Obj): boolean {
  if (isObj(r.result) && (r.sid !== undefined || r.results_link !== undefined) && looksNotable(r.result))
    return true;
  return looksNotable(r);
}

/** Webhook body → the notable row plus the envelope's sid / search name. */
function unwrap(r: Obj): { row: Obj; sid?: string; searchName?: string; resultsLink?: string } {
  if (isObj(r.result) && (r.sid !== undefined || r.results_link !== undefined)) {
    return {
      row: r.result,
      sid: optString(r.sid, 'sid', true),
      searchName: optString(r.search_name, 'search_name'),
      resultsLink: optString(r.results_link, 'results_link'),
    };
  }
  return { row: r };
}

/** First value of a possibly multi-valued field. */
function one(row: Obj, field: string): string | undefined {
  const v = Object.hasOwn(row, field) ? row[field] : undefined;
  return optString(Array.isArray(v) ? v[0] : v, field, true);
}

/**
 * Splunk ES has no confidence field: urgency (severity × asset/identity priority) is the analyst-facing
 * ranking. Security Content detections that carry `confidence` (0–100) use it instead.
 */
const URGENCY_CONFIDENCE: Record<Severity, number> = {
  info: 0.2,
  low: 0.4,
  medium: 0.6,
  high: 0.75,
  critical: 0.85,
};

function normalizeSplunkNotable(r: Obj): NormalizedDetection {
  const { row, sid, searchName, resultsLink } = unwrap(r);
  const ruleName = one(row, 'rule_name') ?? one(row, 'rule_title') ?? one(row, 'search_name') ?? searchName;
  const eventId = one(row, 'event_id');
  const origSid = one(row, 'orig_sid');
  const origRid = one(row, 'orig_rid');
  const ident = splunkIdentity(row);
  const time = row._time ?? row.orig_time ?? fail('missing _time');
  const occurredAt = toIso(Array.isArray(time) ? time[0] : time, '_time');
  // event_id is the notable's own id; without it (raw correlation-search rows) the stash ids or the
  // webhook's search id identify the row.
  const id = checkId(
    eventId ??
      (origSid !== undefined ? `${origSid}@@${origRid ?? '0'}` : undefined) ??
      (sid !== undefined ? `${sid}@@${ident.id}` : undefined) ??
      fail('missing event_id (and no orig_sid or webhook sid to identify the notable)'),
    'event_id',
  );

  const severity: Severity =
    severityFromName(one(row, 'urgency')) ?? severityFromName(one(row, 'severity')) ?? 'medium';
  const confidenceField = optNumber(one(row, 'confidence'), 'confidence');
  const confidence = confidenceField !== undefined ? confidenceField / 100 : URGENCY_CONFIDENCE[severity];
  const techniques = strings(row['annotations.mitre_attack']).concat(strings(row.mitre_technique_id));
  const kind: DetectionKind =
    kindFromRuleName(ruleName) ?? kindFromText(ruleName) ?? kindFromMitre(techniques) ?? 'other';

  return {
    id,
    source: 'splunk_es',
    kind,
    confidence: conf(confidence),
    severity,
    identity: ident,
    occurredAt,
    ...(ruleName !== undefined ? { title: ruleName } : {}),
    evidence: compact({
      ruleName,
      searchName: one(row, 'search_name') ?? searchName,
      securityDomain: one(row, 'security_domain'),
      urgency: one(row, 'urgency'),
      riskScore: optNumber(one(row, 'risk_score'), 'risk_score'),
      riskObject: one(row, 'risk_object'),
      riskObjectType: one(row, 'risk_object_type'),
      origSid,
      origRid,
      sid,
      status: one(row, 'status_label') ?? one(row, 'status'),
      owner: one(row, 'owner'),
      mitreTechniques: techniques,
      ip: one(row, 'src') ?? one(row, 'src_ip'),
      country: one(row, 'src_country') ?? one(row, 'Country'),
      city: one(row, 'src_city') ?? one(row, 'City'),
      userAgent: one(row, 'http_user_agent') ?? one(row, 'user_agent'),
      dest: one(row, 'dest'),
      app: one(row, 'app'),
      url: resultsLink,
    }),
    raw: r,
  };
}

function splunkIdentity(row: Obj): IdentityRef {
  const riskObjectType = one(row, 'risk_object_type');
  const candidates: Array<[string, string | undefined, string | undefined, string | undefined]> = [
    ['src_user', one(row, 'src_user'), one(row, 'src_user_type'), one(row, 'src_user_category')],
    ['user', one(row, 'user'), one(row, 'user_type'), one(row, 'user_category')],
  ];
  if (riskObjectType === 'user')
    candidates.push(['risk_object', one(row, 'risk_object'), undefined, undefined]);
  // For an account-takeover notable the acting account (src_user) is the one to contain; `user` is the
  // target of the activity when both are present. A plain authentication notable only has `user`.
  for (const [field, value, userType, category] of candidates) {
    if (value === undefined || value === 'unknown') continue;
    let type: IdentityType = awsUserType(userType) ?? classifyPrincipal(value) ?? 'human';
    if (category !== undefined && /service/i.test(category)) type = 'service_account';
    const vendor = one(row, 'vendor_product');
    const provider = providerName(vendor) ?? (value.startsWith('arn:aws') ? 'aws' : 'unknown');
    return identity(provider, value, type, {
      tenant: one(row, `${field}_domain`) ?? one(row, 'user_domain'),
    });
  }
  return fail('missing identity: none of src_user, user, risk_object (with risk_object_type=user) present');
}

export const splunkNotable: Normalizer<'splunk_notable'> = {
  name: 'splunk_notable',
  detect: isSplunkNotable,
  normalize: (r) => normalizeSplunkNotable(r as Obj),
};
