/**
 * Amazon GuardDuty findings, as delivered by Amazon EventBridge (`detail-type: GuardDuty Finding`,
 * `source: aws.guardduty`, the finding in `detail`); a bare finding (GetFindings output) is accepted too.
 * Schema: GuardDuty API reference (Finding, Resource, AccessKeyDetails, InstanceDetails, Service, Action,
 * AwsApiCallAction, RemoteIpDetails), "GuardDuty finding format", "Severity levels of GuardDuty findings".
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
  awsUserType,
  checkId,
  compact,
  conf,
  fail,
  get,
  identity,
  isLongTermAwsKey,
  isObj,
  type Obj,
  optId,
  optNumber,
  optObj,
  optString,
  reqId,
  reqString,
  toIso,
} from './util.ts';

function isGuardDuty(r: Obj): boolean {
  if (r['detail-type'] === 'GuardDuty Finding') return true;
  if (r.source === 'aws.guardduty' && isObj(r.detail)) return true;
  return (
    typeof r.schemaVersion === 'string' &&
    typeof r.arn === 'string' &&
    r.arn.includes(':guardduty:') &&
    isObj(r.resource)
  );
}

/** Finding type (ThreatPurpose:ResourceType/ThreatFamily.Detail) → kind; first match wins. */
const TYPE_KIND: ReadonlyArray<[RegExp, DetectionKind]> = [
  [/^AttackSequence:/, 'known_compromise'],
  [/InstanceCredentialExfiltration/, 'anomalous_token_use'],
  [/ConsoleLoginSuccess\.B$/, 'impossible_travel'],
  [/^PrivilegeEscalation:/, 'privilege_escalation'],
  [/^CredentialAccess:/, 'credential_abuse'],
  [/^UnauthorizedAccess:IAMUser\/(MaliciousIPCaller|TorIPCaller)/, 'credential_abuse'],
  [/^Policy:IAMUser\/RootCredentialUsage/, 'suspicious_api_use'],
  [
    /^(Discovery|Persistence|Exfiltration|Impact|DefenseEvasion|Stealth|Recon|InitialAccess|UnauthorizedAccess|PenTest|Policy):IAMUser\//,
    'suspicious_api_use',
  ],
];

/**
 * GuardDuty gives a severity, not a confidence, so confidence follows how the finding is made:
 * deterministic evidence (instance credentials used outside AWS, threat-intel IPs, correlated attack
 * sequences) is strong; ML anomaly findings are moderate.
 */
const TYPE_CONFIDENCE: ReadonlyArray<[RegExp, number]> = [
  [/^AttackSequence:/, 0.95],
  [/InstanceCredentialExfiltration/, 0.9],
  [/MaliciousIPCaller/, 0.85],
  [/TorIPCaller/, 0.7],
  [/ConsoleLoginSuccess\.B$/, 0.7],
  [/AnomalousBehavior/, 0.6],
  [/^PenTest:/, 0.6],
];

/** Severity levels: Low 1.0–3.9, Medium 4.0–6.9, High 7.0–8.9, Critical 9.0–10.0. */
function severityOf(n: number): Severity {
  if (n >= 9) return 'critical';
  if (n >= 7) return 'high';
  if (n >= 4) return 'medium';
  if (n >= 1) return 'low';
  return 'info';
}

function normalizeGuardDuty(r: Obj): NormalizedDetection {
  const enveloped = isObj(r.detail);
  const f = enveloped ? (r.detail as Obj) : r;
  const prefix = enveloped ? 'detail.' : '';
  const id = checkId(reqId(f.id, `${prefix}id`), `${prefix}id`);
  const type = reqString(f.type, `${prefix}type`);
  const sev = optNumber(f.severity, `${prefix}severity`);
  if (sev === undefined) return fail(`missing ${prefix}severity`);
  if (sev < 0 || sev > 10) return fail(`invalid ${prefix}severity: ${sev} outside 0–10`);
  const account = optId(r.account, 'account') ?? optId(f.accountId, `${prefix}accountId`);
  const region = optString(r.region, 'region') ?? optString(f.region, `${prefix}region`);
  const updatedAt = f.updatedAt ?? f.createdAt ?? (enveloped ? r.time : undefined);
  const title = optString(f.title, `${prefix}title`);

  const service = optObj(f.service, `${prefix}service`);
  const action = optObj(service?.action, `${prefix}service.action`);
  const apiCall = optObj(action?.awsApiCallAction, `${prefix}service.action.awsApiCallAction`);
  const remote = optObj(
    apiCall?.remoteIpDetails ?? get(action, 'networkConnectionAction.remoteIpDetails'),
    'remoteIpDetails',
  );
  const archived = service?.archived === true;

  let confidence = TYPE_CONFIDENCE.find(([re]) => re.test(type))?.[1] ?? 0.5;
  if (archived) confidence = Math.min(confidence, 0.1);

  return {
    id,
    source: 'aws_guardduty',
    kind: TYPE_KIND.find(([re]) => re.test(type))?.[1] ?? 'other',
    confidence: conf(confidence),
    severity: severityOf(sev),
    identity: guardDutyIdentity(f, prefix, type, account),
    occurredAt: toIso(updatedAt, `${prefix}updatedAt`),
    ...(title !== undefined ? { title } : {}),
    evidence: compact({
      ruleName: type,
      findingArn: optString(f.arn, `${prefix}arn`),
      guardDutySeverity: sev,
      account,
      region,
      api: optString(apiCall?.api, 'awsApiCallAction.api'),
      serviceName: optString(apiCall?.serviceName, 'awsApiCallAction.serviceName'),
      userAgent: optString(apiCall?.userAgent, 'awsApiCallAction.userAgent'),
      ip:
        optString(remote?.ipAddressV4, 'remoteIpDetails.ipAddressV4') ??
        optString(remote?.ipAddressV6, 'remoteIpDetails.ipAddressV6'),
      country:
        optString(get(remote, 'country.countryCode'), 'remoteIpDetails.country.countryCode') ??
        optString(get(remote, 'country.countryName'), 'remoteIpDetails.country.countryName'),
      city: optString(get(remote, 'city.cityName'), 'remoteIpDetails.city.cityName'),
      asnOrg: optString(get(remote, 'organization.asnOrg'), 'remoteIpDetails.organization.asnOrg'),
      count: optNumber(service?.count, `${prefix}service.count`),
      eventFirstSeen: optString(service?.eventFirstSeen, `${prefix}service.eventFirstSeen`),
      eventLastSeen: optString(service?.eventLastSeen, `${prefix}service.eventLastSeen`),
      archived: archived || undefined,
    }),
    raw: r,
  };
}

function guardDutyIdentity(f: Obj, prefix: string, type: string, account: string | undefined): IdentityRef {
  const resource = optObj(f.resource, `${prefix}resource`);
  const key = optObj(resource?.accessKeyDetails, `${prefix}resource.accessKeyDetails`);
  const userType = optString(key?.userType, `${prefix}resource.accessKeyDetails.userType`);
  const userName = optString(key?.userName, `${prefix}resource.accessKeyDetails.userName`);
  const principalId = optString(key?.principalId, `${prefix}resource.accessKeyDetails.principalId`);
  const accessKeyId = optString(key?.accessKeyId, `${prefix}resource.accessKeyDetails.accessKeyId`);
  const acct = account ?? '';
  const opts = { tenant: account, displayName: userName };

  if (key && (userName !== undefined || principalId !== undefined || accessKeyId !== undefined)) {
    const mapped: IdentityType | undefined = awsUserType(userType);
    if (userType === 'Root')
      return identity('aws', `arn:aws:iam::${acct}:root`, 'human', { tenant: account, displayName: 'root' });
    if (userType === 'AssumedRole' || mapped === 'service_account') {
      // principalId of a role session is "AROA…:<session>"; EC2 instance sessions are named by instance id.
      const session = principalId?.split(':')[1];
      const onInstance =
        /InstanceCredentialExfiltration/.test(type) ||
        (session !== undefined && /^i-[0-9a-f]+$/.test(session));
      const id =
        userName !== undefined ? `arn:aws:iam::${acct}:role/${userName}` : (principalId ?? accessKeyId)!;
      return identity('aws', id, onInstance ? 'workload' : 'service_account', opts);
    }
    // A long-term key is the credential to act on (deactivate/rotate), not the person who owns it.
    if (isLongTermAwsKey(accessKeyId)) return identity('aws', accessKeyId!, 'api_key', opts);
    if (userType === 'FederatedUser' && userName !== undefined)
      return identity('aws', `arn:aws:sts::${acct}:federated-user/${userName}`, 'human', opts);
    if (userName !== undefined)
      return identity('aws', `arn:aws:iam::${acct}:user/${userName}`, mapped ?? 'human', opts);
    return identity('aws', (principalId ?? accessKeyId)!, mapped ?? 'human', opts);
  }
  // EC2 findings: the instance's role (via its instance profile) is the workload identity.
  const profileArn = optString(
    get(resource, 'instanceDetails.iamInstanceProfile.arn'),
    `${prefix}resource.instanceDetails.iamInstanceProfile.arn`,
  );
  if (profileArn !== undefined) {
    return identity('aws', profileArn, 'workload', {
      tenant: account,
      displayName: optString(
        get(resource, 'instanceDetails.instanceId'),
        `${prefix}resource.instanceDetails.instanceId`,
      ),
    });
  }
  return fail(
    `missing identity: none of ${prefix}resource.accessKeyDetails.{userName, principalId, accessKeyId}, ${prefix}resource.instanceDetails.iamInstanceProfile.arn present`,
  );
}

export const guardDuty: Normalizer<'guardduty'> = {
  name: 'guardduty',
  detect: isGuardDuty,
  normalize: (r) => normalizeGuardDuty(r as Obj),
};
