/**
 * OCSF Detection Finding (class_uid 2004, category Findings), as written by OCSF producers and by
 * Amazon Security Lake. Schema: ocsf-schema events/findings/detection_finding.json, finding.json,
 * objects/finding_info.json, actor.json, user.json, account.json, evidences.json.
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
  at,
  awsUserType,
  checkId,
  classifyPrincipal,
  compact,
  conf,
  fail,
  get,
  identity,
  kindFromMitre,
  kindFromText,
  type Obj,
  optArray,
  optId,
  optNumber,
  optObj,
  optString,
  own,
  providerName,
  reqId,
  severityFromName,
  strings,
  toIso,
  token,
} from './util.ts';

function isOcsfDetectionFinding(r: Obj): boolean {
  return r.class_uid === 2004 || r.class_uid === '2004';
}

/** severity_id: 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal, 99 Other. */
const SEVERITY_ID: Record<number, Severity> = {
  1: 'info',
  2: 'low',
  3: 'medium',
  4: 'high',
  5: 'critical',
  6: 'critical',
};

/** confidence_id: 0 Unknown, 1 Low, 2 Medium, 3 High, 99 Other. */
const CONFIDENCE_ID: Record<number, number> = { 1: 0.35, 2: 0.6, 3: 0.85 };

/** account.type_id → provider (3 AWS IAM User, 4 AWS IAM Role, 5 GCP Account, 6 Azure AD Account, 15 Google Workspace, 17 M365 Tenant). */
const ACCOUNT_PROVIDER: Record<number, string> = {
  3: 'aws',
  4: 'aws',
  10: 'aws',
  5: 'gcp',
  15: 'gcp',
  6: 'entra',
  17: 'entra',
};

function normalizeOcsf(r: Obj): NormalizedDetection {
  const findingInfo = optObj(r.finding_info, 'finding_info') ?? fail('missing finding_info');
  const uid = checkId(reqId(findingInfo.uid, 'finding_info.uid'), 'finding_info.uid');
  const metadata = optObj(r.metadata, 'metadata');
  const product = optObj(get(metadata, 'product'), 'metadata.product');
  const productName = optString(product?.name, 'metadata.product.name');
  const vendorName = optString(product?.vendor_name, 'metadata.product.vendor_name');
  const title = optString(findingInfo.title, 'finding_info.title');
  const occurredAt = toIso(r.time, 'time', 'ms');

  // Severity
  const severityId = optNumber(r.severity_id, 'severity_id');
  const severity: Severity =
    at(SEVERITY_ID, severityId) ?? severityFromName(optString(r.severity, 'severity')) ?? 'medium';

  // Confidence: confidence_score (0-100) wins over confidence_id.
  const score = optNumber(r.confidence_score, 'confidence_score');
  const confidenceId = optNumber(r.confidence_id, 'confidence_id');
  let confidence =
    score !== undefined
      ? score / 100
      : confidenceId !== undefined
        ? (at(CONFIDENCE_ID, confidenceId) ?? 0.5)
        : 0.5;
  // status_id 3 Suppressed: reviewed and judged benign / false positive.
  const statusId = optNumber(r.status_id, 'status_id');
  if (statusId === 3) confidence = Math.min(confidence, 0.05);

  // Kind: ATT&CK techniques, then finding types / title / analytic name.
  const attacks =
    optArray(findingInfo.attacks, 'finding_info.attacks') ?? optArray(r.attacks, 'attacks') ?? [];
  const techniques = attacks.flatMap((a) =>
    strings(get(a, 'technique.uid')).concat(strings(get(a, 'sub_technique.uid'))),
  );
  const types = strings(findingInfo.types);
  const analyticName = optString(get(findingInfo, 'analytic.name'), 'finding_info.analytic.name');
  const kind: DetectionKind =
    kindFromRuleName(title, analyticName) ??
    kindFromText(...types, title, analyticName) ??
    kindFromMitre(techniques) ??
    'other';

  const ident = ocsfIdentity(r, vendorName);
  const src =
    optObj(r.src_endpoint, 'src_endpoint') ??
    optObj(get(firstEvidence(r), 'src_endpoint'), 'evidences[].src_endpoint');

  return {
    id: uid,
    source: `ocsf:${token(productName ?? 'unknown')}`,
    kind,
    confidence: conf(confidence),
    severity,
    identity: ident,
    occurredAt,
    ...(title !== undefined ? { title } : {}),
    evidence: compact({
      ruleName: analyticName ?? title,
      findingTypes: types,
      mitreTechniques: techniques,
      ip: optString(src?.ip, 'src_endpoint.ip'),
      country: optString(get(src, 'location.country'), 'src_endpoint.location.country'),
      city: optString(get(src, 'location.city'), 'src_endpoint.location.city'),
      userAgent: optString(get(r, 'http_request.user_agent'), 'http_request.user_agent'),
      url: optString(findingInfo.src_url, 'finding_info.src_url'),
      product: productName,
      vendor: vendorName,
      status: optString(r.status, 'status'),
      confidenceId,
      severityId,
    }),
    raw: r,
  };
}

function firstEvidence(r: Obj): unknown {
  const ev = optArray(r.evidences, 'evidences');
  return ev?.[0];
}

function ocsfIdentity(r: Obj, vendorName: string | undefined): IdentityRef {
  const actor = optObj(r.actor, 'actor');
  const candidates: Array<[string, unknown]> = [['actor.user', actor?.user]];
  for (const [i, e] of (optArray(r.evidences, 'evidences') ?? []).entries()) {
    candidates.push([`evidences[${i}].actor.user`, get(e, 'actor.user')]);
    candidates.push([`evidences[${i}].user`, own(e, 'user')]);
  }
  for (const [path, u] of candidates) {
    if (u === undefined || u === null) continue;
    const user = optObj(u, path)!;
    const uidVal = optId(user.uid, `${path}.uid`);
    const uidAlt = optId(user.uid_alt, `${path}.uid_alt`);
    const email = optString(user.email_addr, `${path}.email_addr`);
    const name = optString(user.name, `${path}.name`);
    const id = uidVal ?? uidAlt ?? email ?? name;
    if (id === undefined) continue;
    const account = optObj(user.account, `${path}.account`);
    const accountTypeId = optNumber(account?.type_id, `${path}.account.type_id`);
    const userTypeId = optNumber(user.type_id, `${path}.type_id`);
    const userType = optString(user.type, `${path}.type`);
    let type: IdentityType = 'human';
    if (userTypeId === 4) type = 'service_account';
    else if (userTypeId === 3) type = 'workload';
    else if (accountTypeId === 4) type = 'service_account';
    else type = awsUserType(userType) ?? classifyPrincipal(id) ?? 'human';
    const idpName = optString(get(actor, 'idp.name'), 'actor.idp.name');
    const provider =
      providerName(idpName) ??
      at(ACCOUNT_PROVIDER, accountTypeId) ??
      (awsUserType(userType) !== undefined || id.startsWith('arn:aws') ? 'aws' : undefined) ??
      providerName(vendorName) ??
      'unknown';
    return identity(provider, id, type, {
      tenant: optId(account?.uid, `${path}.account.uid`),
      displayName: name ?? email,
    });
  }
  // An application acting on its own (OAuth client, service) with no user context.
  const appUid = optId(actor?.app_uid, 'actor.app_uid');
  const appName = optString(actor?.app_name, 'actor.app_name');
  if (appUid !== undefined || appName !== undefined) {
    return identity(
      providerName(optString(get(actor, 'idp.name'), 'actor.idp.name')) ??
        providerName(vendorName) ??
        'unknown',
      (appUid ?? appName)!,
      'oauth_app',
      {
        displayName: appName,
      },
    );
  }
  return fail(
    'missing identity: none of actor.user.uid, actor.user.uid_alt, actor.user.email_addr, actor.user.name, evidences[].actor.user.*, evidences[].user.*, actor.app_uid, actor.app_name present',
  );
}

export const ocsf: Normalizer<'ocsf'> = {
  name: 'ocsf',
  detect: isOcsfDetectionFinding,
  normalize: (r) => normalizeOcsf(r as Obj),
};
