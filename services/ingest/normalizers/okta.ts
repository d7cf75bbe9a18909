/**
 * Okta System Log events (LogEvent objects from GET /api/v1/logs or an Okta log stream).
 * Schema: Okta "System Log API" (LogEvent: uuid, published, eventType, severity, actor, client,
 * outcome, target, transaction, debugContext.debugData, securityContext), Okta ThreatInsight and
 * Identity Threat Protection event-type references.
 */
import type {
  DetectionKind,
  IdentityRef,
  IdentityType,
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
  get,
  identity,
  isObj,
  maxSeverity,
  type Obj,
  optArray,
  optBool,
  optObj,
  optString,
  RISK_LEVEL_SEVERITY,
  reqId,
  reqString,
  toIso,
} from './util.ts';

function isOkta(r: Obj): boolean {
  return (
    typeof r.eventType === 'string' && r.uuid !== undefined && r.published !== undefined && isObj(r.actor)
  );
}

interface Rule {
  kind: DetectionKind;
  confidence: number;
  severity: Severity;
}

/** eventType → mapping. Anything else still normalizes, as `other` with low confidence. */
const RULES: Record<string, Rule> = {
  // ThreatInsight: the request came from an IP Okta deems malicious (stuffing, spraying).
  'security.threat.detected': { kind: 'credential_abuse', confidence: 0.6, severity: 'high' },
  // An admin granted Okta Support impersonation of the org: a classic step after an admin takeover.
  'user.session.impersonation.grant': { kind: 'privilege_escalation', confidence: 0.6, severity: 'high' },
  'user.session.impersonation.initiate': { kind: 'privilege_escalation', confidence: 0.6, severity: 'high' },
  // One denied push is a weak signal; the decider's count-in-window turns a burst into fatigue.
  'user.mfa.okta_verify.deny_push': { kind: 'mfa_fatigue', confidence: 0.4, severity: 'medium' },
  'user.mfa.okta_verify.deny_push_upgrade_needed': {
    kind: 'mfa_fatigue',
    confidence: 0.4,
    severity: 'medium',
  },
  // The session cookie moved to another IP/ASN mid-session: session hijack.
  'security.session.detect_client_roaming': {
    kind: 'anomalous_token_use',
    confidence: 0.75,
    severity: 'high',
  },
  // The account owner says "that was not me".
  'user.account.report_suspicious_activity_by_enduser': {
    kind: 'known_compromise',
    confidence: 0.85,
    severity: 'high',
  },
  'user.account.privilege.grant': { kind: 'privilege_escalation', confidence: 0.3, severity: 'medium' },
};

const OKTA_SEVERITY: Record<string, Severity> = {
  DEBUG: 'info',
  INFO: 'info',
  WARN: 'medium',
  ERROR: 'high',
};

function normalizeOkta(r: Obj): NormalizedDetection {
  const uuid = checkId(reqId(r.uuid, 'uuid'), 'uuid');
  const eventType = reqString(r.eventType, 'eventType');
  const occurredAt = toIso(r.published, 'published');
  const debugData = optObj(get(r, 'debugContext.debugData'), 'debugContext.debugData') ?? {};
  const threatSuspected = optBool(debugData.threatSuspected, 'debugContext.debugData.threatSuspected');
  const risk = optString(debugData.risk, 'debugContext.debugData.risk');
  const riskLevel =
    risk !== undefined ? /level=(LOW|MEDIUM|HIGH)/i.exec(risk)?.[1]?.toUpperCase() : undefined;
  const outcome = optObj(r.outcome, 'outcome');
  const outcomeResult = optString(outcome?.result, 'outcome.result');

  // Events without a mapping of their own (sign-on evaluations, session starts, token grants) are
  // detections only when ThreatInsight (threatSuspected) or risk scoring (risk level=HIGH) flagged them.
  const rule: Rule =
    at(RULES, eventType) ??
    (threatSuspected === true
      ? { kind: 'credential_abuse', confidence: riskLevel === 'HIGH' ? 0.7 : 0.55, severity: 'medium' }
      : riskLevel === 'HIGH'
        ? { kind: 'credential_abuse', confidence: 0.5, severity: 'medium' }
        : { kind: 'other', confidence: 0.05, severity: 'info' });
  const oktaSeverity = optString(r.severity, 'severity');
  let severity = rule.severity;
  const fromOkta = at(OKTA_SEVERITY, oktaSeverity);
  if (fromOkta !== undefined) severity = maxSeverity(severity, fromOkta);
  const fromRisk = at(RISK_LEVEL_SEVERITY, riskLevel);
  if (fromRisk !== undefined) severity = maxSeverity(severity, fromRisk);

  const client = optObj(r.client, 'client');
  const geo = optObj(client?.geographicalContext, 'client.geographicalContext');
  const displayMessage = optString(r.displayMessage, 'displayMessage');

  return {
    id: uuid,
    source: 'okta',
    kind: rule.kind,
    confidence: conf(rule.confidence),
    severity,
    identity: oktaIdentity(r, eventType),
    occurredAt,
    title: displayMessage ?? eventType,
    evidence: compact({
      ruleName: eventType,
      displayMessage,
      outcome: outcomeResult,
      outcomeReason: optString(outcome?.reason, 'outcome.reason'),
      ip: optString(client?.ipAddress, 'client.ipAddress'),
      country: optString(geo?.country, 'client.geographicalContext.country'),
      city: optString(geo?.city, 'client.geographicalContext.city'),
      userAgent: optString(get(client, 'userAgent.rawUserAgent'), 'client.userAgent.rawUserAgent'),
      threatSuspected,
      risk,
      behaviors: optString(debugData.behaviors, 'debugContext.debugData.behaviors'),
      threatDetections: optString(debugData.threatDetections, 'debugContext.debugData.threatDetections'),
      url: optString(debugData.url, 'debugContext.debugData.url'),
      reportedEventType: optString(
        debugData.suspiciousActivityEventType,
        'debugContext.debugData.suspiciousActivityEventType',
      ),
      reportedEventId: optString(
        debugData.suspiciousActivityEventId,
        'debugContext.debugData.suspiciousActivityEventId',
      ),
      reportedIp: optString(
        debugData.suspiciousActivityEventIp,
        'debugContext.debugData.suspiciousActivityEventIp',
      ),
      transactionId: optString(get(r, 'transaction.id'), 'transaction.id'),
      sessionId: optString(
        get(r, 'authenticationContext.externalSessionId'),
        'authenticationContext.externalSessionId',
      ),
      isProxy: optBool(get(r, 'securityContext.isProxy'), 'securityContext.isProxy'),
      asOrg: optString(get(r, 'securityContext.asOrg'), 'securityContext.asOrg'),
    }),
    raw: r,
  };
}

/** actor.type → identity type. `User` is a person; client apps act for themselves. */
function typeOf(actorType: string | undefined): IdentityType | undefined {
  switch (actorType) {
    case 'User':
      return 'human';
    case 'PublicClientApp':
    case 'AppInstance':
      return 'oauth_app';
    default:
      return undefined;
  }
}

function oktaIdentity(r: Obj, eventType: string): IdentityRef {
  const actor = optObj(r.actor, 'actor') ?? {};
  const actorType = optString(actor.type, 'actor.type');
  const actorId = optString(actor.id, 'actor.id');
  const mapped = typeOf(actorType);
  if (mapped !== undefined && actorId !== undefined) {
    return identity('okta', actorId, mapped, {
      displayName:
        optString(actor.alternateId, 'actor.alternateId') ??
        optString(actor.displayName, 'actor.displayName'),
    });
  }
  // System-initiated events name the affected user as a target.
  for (const [i, t] of (optArray(r.target, 'target') ?? []).entries()) {
    const target = optObj(t, `target[${i}]`);
    if (optString(target?.type, `target[${i}].type`) !== 'User') continue;
    const id = optString(target?.id, `target[${i}].id`);
    if (id !== undefined)
      return identity('okta', id, 'human', {
        displayName: optString(target?.alternateId, `target[${i}].alternateId`),
      });
  }
  if (eventType === 'security.threat.detected')
    return fail(
      `missing identity: security.threat.detected names no user (actor.type=${actorType ?? 'absent'}); ThreatInsight flags the IP before the user is known`,
    );
  return fail(
    `missing identity: actor is not a User or client app (actor.type=${actorType ?? 'absent'}, actor.id ${actorId === undefined ? 'absent' : 'present'}) and no target[] of type User has an id`,
  );
}

export const okta: Normalizer<'okta'> = {
  name: 'okta',
  detect: isOkta,
  normalize: (r) => normalizeOkta(r as Obj),
};
