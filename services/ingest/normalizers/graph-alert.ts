/**
 * Microsoft Defender XDR / Sentinel alerts through the Microsoft Graph security API v2
 * (microsoft.graph.security.alert, /security/alerts_v2). Schema: Graph docs "alert resource type",
 * "alertEvidence", "userEvidence", "userAccount", "oauthApplicationEvidence", "ipEvidence".
 */
import type {
  DetectionKind,
  IdentityRef,
  NormalizedDetection,
  Severity,
} from '../../../schemas/detection.ts';
import type { Normalizer } from './normalizer.ts';
import { kindFromRuleName } from './rule-names.ts';
import {
  at,
  checkId,
  compact,
  conf,
  fail,
  identity,
  isObj,
  kindFromMitre,
  kindFromText,
  type Obj,
  optArray,
  optObj,
  optString,
  reqId,
  strings,
  toIso,
} from './util.ts';

function isGraphAlert(r: Obj): boolean {
  if (r['@odata.type'] === '#microsoft.graph.security.alert') return true;
  return (
    typeof r.id === 'string' &&
    r.createdDateTime !== undefined &&
    (r.detectionSource !== undefined || r.serviceSource !== undefined) &&
    Array.isArray(r.evidence)
  );
}

/** alertSeverity: unknown, informational, low, medium, high. */
const SEVERITY: Record<string, Severity> = {
  informational: 'info',
  low: 'low',
  medium: 'medium',
  high: 'high',
};
const SEVERITY_CONFIDENCE: Record<string, number> = {
  informational: 0.3,
  low: 0.45,
  medium: 0.6,
  high: 0.75,
};

/** MITRE-aligned kill-chain category → kind, when neither title nor techniques decide. */
const CATEGORY_KIND: Record<string, DetectionKind> = {
  CredentialAccess: 'credential_abuse',
  InitialAccess: 'credential_abuse',
  PrivilegeEscalation: 'privilege_escalation',
  Discovery: 'suspicious_api_use',
};

function normalizeGraphAlert(r: Obj): NormalizedDetection {
  const id = checkId(reqId(r.id, 'id'), 'id');
  const title = optString(r.title, 'title');
  const severityName = optString(r.severity, 'severity');
  const severity: Severity = at(SEVERITY, severityName) ?? 'medium';
  const classification = optString(r.classification, 'classification');
  const determination = optString(r.determination, 'determination');
  const category = optString(r.category, 'category');
  const techniques = strings(r.mitreTechniques);

  let confidence = at(SEVERITY_CONFIDENCE, severityName) ?? 0.5;
  if (determination === 'compromisedAccount' || determination === 'compromisedUser') confidence = 0.95;
  if (classification === 'truePositive') confidence = Math.max(confidence, 0.95);
  if (classification === 'falsePositive') confidence = 0.05;
  if (classification === 'informationalExpectedActivity') confidence = 0.1;

  const kind: DetectionKind =
    kindFromRuleName(title) ??
    kindFromText(title) ??
    kindFromMitre(techniques) ??
    at(CATEGORY_KIND, category) ??
    'other';

  const evidence = optArray(r.evidence, 'evidence') ?? [];
  const ipEv = evidence.find((e) => isObj(e) && e['@odata.type'] === '#microsoft.graph.security.ipEvidence');
  const urlEv = evidence.find(
    (e) => isObj(e) && e['@odata.type'] === '#microsoft.graph.security.urlEvidence',
  );
  const serviceSource = optString(r.serviceSource, 'serviceSource');

  return {
    id,
    source: `msgraph:${serviceSource ?? 'unknown'}`.slice(0, 128),
    kind,
    confidence: conf(confidence),
    severity,
    identity: graphIdentity(evidence, optString(r.tenantId, 'tenantId')),
    occurredAt: toIso(r.createdDateTime, 'createdDateTime'),
    ...(title !== undefined ? { title } : {}),
    evidence: compact({
      ruleName: title,
      category,
      detectionSource: optString(r.detectionSource, 'detectionSource'),
      serviceSource,
      detectorId: optString(r.detectorId, 'detectorId'),
      providerAlertId: optString(r.providerAlertId, 'providerAlertId'),
      incidentId: optString(r.incidentId, 'incidentId'),
      status: optString(r.status, 'status'),
      classification,
      determination,
      mitreTechniques: techniques,
      firstActivity: optString(r.firstActivityDateTime, 'firstActivityDateTime'),
      lastActivity: optString(r.lastActivityDateTime, 'lastActivityDateTime'),
      ip: isObj(ipEv) ? optString(ipEv.ipAddress, 'evidence[].ipAddress') : undefined,
      country: isObj(ipEv) ? optString(ipEv.countryLetterCode, 'evidence[].countryLetterCode') : undefined,
      url:
        optString(r.alertWebUrl, 'alertWebUrl') ??
        (isObj(urlEv) ? optString(urlEv.url, 'evidence[].url') : undefined),
    }),
    raw: r,
  };
}

function graphIdentity(evidence: unknown[], tenant: string | undefined): IdentityRef {
  const users = evidence.filter(
    (e): e is Obj => isObj(e) && e['@odata.type'] === '#microsoft.graph.security.userEvidence',
  );
  // The compromised account first, then any other user evidence.
  users.sort(
    (a, b) =>
      Number(strings(b.roles).includes('compromised')) - Number(strings(a.roles).includes('compromised')),
  );
  for (const [i, ev] of users.entries()) {
    const acct = optObj(ev.userAccount, `evidence[${i}].userAccount`);
    if (!acct) continue;
    const aad = optString(acct.azureAdUserId, 'userAccount.azureAdUserId');
    const upn = optString(acct.userPrincipalName, 'userAccount.userPrincipalName');
    const name = optString(acct.accountName, 'userAccount.accountName');
    const domain = optString(acct.domainName, 'userAccount.domainName');
    const sid = optString(acct.userSid, 'userAccount.userSid');
    const display = optString(acct.displayName, 'userAccount.displayName');
    if (aad !== undefined || upn !== undefined) {
      return identity('entra', (aad ?? upn)!, 'human', { tenant, displayName: upn ?? display });
    }
    const onPrem = name !== undefined ? (domain !== undefined ? `${domain}\\${name}` : name) : sid;
    if (onPrem !== undefined) {
      // Computer accounts end with `$`.
      return identity('active_directory', onPrem, name?.endsWith('$') ? 'workload' : 'human', {
        tenant: domain,
        displayName: display,
      });
    }
  }
  const app = evidence.find(
    (e): e is Obj => isObj(e) && e['@odata.type'] === '#microsoft.graph.security.oauthApplicationEvidence',
  );
  if (app) {
    const appId = optString(app.appId, 'oauthApplicationEvidence.appId');
    const objectId = optString(app.objectId, 'oauthApplicationEvidence.objectId');
    const id = appId ?? objectId;
    if (id !== undefined)
      return identity('entra', id, 'oauth_app', {
        tenant,
        displayName: optString(app.displayName, 'oauthApplicationEvidence.displayName'),
      });
  }
  return fail(
    'missing identity: no evidence[] of @odata.type userEvidence (userAccount.azureAdUserId, userPrincipalName, accountName, userSid) or oauthApplicationEvidence (appId, objectId)',
  );
}

export const graphAlert: Normalizer<'graph_alert'> = {
  name: 'graph_alert',
  detect: isGraphAlert,
  normalize: (r) => normalizeGraphAlert(r as Obj),
};
