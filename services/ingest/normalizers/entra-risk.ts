/**
 * Microsoft Entra ID Protection risk detections (Graph v1.0 `riskDetection` and
 * `servicePrincipalRiskDetection`, /identityProtection/riskDetections and
 * /identityProtection/servicePrincipalRiskDetections). Schema: Graph docs "riskDetection resource type",
 * "servicePrincipalRiskDetection resource type", "signInLocation resource type".
 */
import type {
  DetectionKind,
  IdentityRef,
  NormalizedDetection,
  Severity,
} from '../../../schemas/detection.ts';
import type { Normalizer } from './normalizer.ts';
import {
  at,
  checkId,
  compact,
  conf,
  fail,
  identity,
  isObj,
  type Obj,
  optObj,
  optString,
  reqId,
  reqString,
  strings,
  toIso,
} from './util.ts';

function isEntraRisk(r: Obj): boolean {
  const t = r['@odata.type'];
  if (t === '#microsoft.graph.riskDetection' || t === '#microsoft.graph.servicePrincipalRiskDetection')
    return true;
  return (
    r.riskEventType !== undefined &&
    r.detectedDateTime !== undefined &&
    (r.userId !== undefined ||
      r.userPrincipalName !== undefined ||
      r.servicePrincipalId !== undefined ||
      r.appId !== undefined)
  );
}

/** riskEventType → kind (user and service-principal detections share the table). */
const KIND: Record<string, DetectionKind> = {
  unlikelyTravel: 'impossible_travel',
  impossibleTravel: 'impossible_travel',
  mcasImpossibleTravel: 'impossible_travel',
  anomalousToken: 'anomalous_token_use',
  tokenIssuerAnomaly: 'anomalous_token_use',
  attemptedPrtAccess: 'anomalous_token_use',
  leakedCredentials: 'secret_exposure',
  adminConfirmedUserCompromised: 'known_compromise',
  adminConfirmedServicePrincipalCompromised: 'known_compromise',
  investigationsThreatIntelligence: 'known_compromise',
  investigationsThreatIntelligenceSigninLinked: 'known_compromise',
  maliciousApplication: 'known_compromise',
  passwordSpray: 'credential_abuse',
  anonymizedIPAddress: 'credential_abuse',
  maliciousIPAddress: 'credential_abuse',
  maliciousIPAddressValidCredentialsBlockedIP: 'credential_abuse',
  malwareInfectedIPAddress: 'credential_abuse',
  suspiciousIPAddress: 'credential_abuse',
  riskyIPAddress: 'credential_abuse',
  unfamiliarFeatures: 'credential_abuse',
  newCountry: 'credential_abuse',
  suspiciousBrowser: 'credential_abuse',
  suspiciousSignins: 'credential_abuse',
  userReportedSuspiciousActivity: 'mfa_fatigue',
  mfaFraud: 'mfa_fatigue',
  suspiciousAPITraffic: 'suspicious_api_use',
  anomalousUserActivity: 'suspicious_api_use',
  anomalousServicePrincipalActivity: 'suspicious_api_use',
};

/** riskLevel: low, medium, high, hidden, none. */
const LEVEL_CONFIDENCE: Record<string, number> = { low: 0.5, medium: 0.7, high: 0.9, hidden: 0.6, none: 0.2 };
const LEVEL_SEVERITY: Record<string, Severity> = {
  low: 'low',
  medium: 'medium',
  high: 'high',
  hidden: 'medium',
  none: 'info',
};

function normalizeEntraRisk(r: Obj): NormalizedDetection {
  const id = checkId(reqId(r.id, 'id'), 'id');
  const riskEventType = reqString(r.riskEventType, 'riskEventType');
  const riskLevel = optString(r.riskLevel, 'riskLevel');
  const riskState = optString(r.riskState, 'riskState');
  const riskDetail = optString(r.riskDetail, 'riskDetail');

  let confidence = at(LEVEL_CONFIDENCE, riskLevel) ?? 0.6;
  let severity: Severity = at(LEVEL_SEVERITY, riskLevel) ?? 'medium';
  switch (riskState) {
    case 'confirmedCompromised':
      confidence = 0.99;
      severity = 'critical';
      break;
    case 'confirmedSafe':
      confidence = 0.02;
      break;
    case 'dismissed':
      confidence = 0.05;
      break;
    case 'remediated':
      // The user already reset the password or passed risk-based MFA: the risk was real but handled.
      confidence = Math.min(confidence, 0.5);
      break;
  }
  if (riskEventType.startsWith('adminConfirmed')) {
    confidence = Math.max(confidence, 0.99);
    severity = 'critical';
  }

  const location = optObj(r.location, 'location');
  const additional = parseAdditionalInfo(r.additionalInfo);
  const ident = entraIdentity(r);

  return {
    id,
    source: 'entra_id_protection',
    kind: at(KIND, riskEventType) ?? 'other',
    confidence: conf(confidence),
    severity,
    identity: ident,
    occurredAt: toIso(r.detectedDateTime, 'detectedDateTime'),
    title: `Entra ID Protection: ${riskEventType}`,
    evidence: compact({
      ruleName: riskEventType,
      riskLevel,
      riskState,
      riskDetail,
      detectionSource: optString(r.source, 'source'),
      detectionTimingType: optString(r.detectionTimingType, 'detectionTimingType'),
      activity: optString(r.activity, 'activity'),
      activityDateTime: optString(r.activityDateTime, 'activityDateTime'),
      ip: optString(r.ipAddress, 'ipAddress'),
      country: optString(location?.countryOrRegion, 'location.countryOrRegion'),
      city: optString(location?.city, 'location.city'),
      state: optString(location?.state, 'location.state'),
      userAgent: additional.userAgent,
      url: additional.alertUrl,
      requestId: optString(r.requestId, 'requestId'),
      correlationId: optString(r.correlationId, 'correlationId'),
      keyIds: strings(r.keyIds),
    }),
    raw: r,
  };
}

function entraIdentity(r: Obj): IdentityRef {
  const spId = optString(r.servicePrincipalId, 'servicePrincipalId');
  const appId = optString(r.appId, 'appId');
  if (spId !== undefined || appId !== undefined) {
    // A service principal is the tenant-local identity of an application: a workload credential.
    return identity('entra', (spId ?? appId)!, 'service_account', {
      displayName: optString(r.servicePrincipalDisplayName, 'servicePrincipalDisplayName'),
    });
  }
  const userId = optString(r.userId, 'userId');
  const upn = optString(r.userPrincipalName, 'userPrincipalName');
  if (userId !== undefined || upn !== undefined) {
    return identity('entra', (userId ?? upn)!, 'human', {
      displayName: upn ?? optString(r.userDisplayName, 'userDisplayName'),
    });
  }
  return fail('missing identity: none of userId, userPrincipalName, servicePrincipalId, appId present');
}

/**
 * `additionalInfo` is a JSON string of `[{"Key": ..., "Value": ...}]` pairs (keys such as userAgent,
 * alertUrl). A malformed string is kept in `raw` and ignored here: it is optional context.
 */
function parseAdditionalInfo(v: unknown): { userAgent?: string; alertUrl?: string } {
  const text = optString(v, 'additionalInfo');
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  const out: { userAgent?: string; alertUrl?: string } = {};
  for (const kv of Array.isArray(parsed) ? parsed : []) {
    if (!isObj(kv) || typeof kv.Value !== 'string') continue;
    if (kv.Key === 'userAgent') out.userAgent = kv.Value;
    if (kv.Key === 'alertUrl') out.alertUrl = kv.Value;
  }
  return out;
}

export const entraRisk: Normalizer<'entra_risk'> = {
  name: 'entra_risk',
  detect: isEntraRisk,
  normalize: (r) => normalizeEntraRisk(r as Obj),
};
