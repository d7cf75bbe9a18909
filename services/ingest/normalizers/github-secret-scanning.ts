/**
 * GitHub `secret_scanning_alert` webhook deliveries (actions created, reopened, resolved, validated,
 * publicly_leaked, assigned, unassigned). Schema: GitHub "Webhook events and payloads —
 * secret_scanning_alert" and the REST description's `secret-scanning-alert-webhook` schema
 * (number, created_at, html_url, secret_type, secret_type_display_name, validity, resolution,
 * push_protection_bypassed, publicly_leaked, multi_repo), plus `repository` and `organization`.
 *
 * The identity is the leaked credential itself (type api_key): what gets revoked or rotated.
 */
import type { NormalizedDetection, Severity } from '../../../schemas/detection.ts';
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
  type Obj,
  optBool,
  optNumber,
  optObj,
  optString,
  reqString,
  toIso,
} from './util.ts';

function isGitHubSecretScanning(r: Obj): boolean {
  return isObj(r.alert) && Object.hasOwn(r.alert, 'secret_type') && isObj(r.repository);
}

/** validity: active, inactive, unknown (the result of the latest validity check). */
const VALIDITY: Record<string, { confidence: number; severity: Severity }> = {
  active: { confidence: 0.95, severity: 'critical' },
  unknown: { confidence: 0.7, severity: 'high' },
  inactive: { confidence: 0.3, severity: 'low' },
};

/** An AWS access key id (long-term AKIA, temporary ASIA): 20 upper-case letters and digits. */
const AWS_ACCESS_KEY_ID = /^(AKIA|ASIA)[A-Z0-9]{16}$/;

function normalizeGitHubSecretScanning(r: Obj): NormalizedDetection {
  const action = reqString(r.action, 'action');
  const alert = optObj(r.alert, 'alert')!;
  const number = optNumber(alert.number, 'alert.number');
  if (number === undefined) return fail('missing alert.number');
  const repo = reqString(get(r, 'repository.full_name'), 'repository.full_name');
  const secretType = reqString(alert.secret_type, 'alert.secret_type');
  const displayName = optString(alert.secret_type_display_name, 'alert.secret_type_display_name');
  const validity = optString(alert.validity, 'alert.validity');
  const publiclyLeaked = optBool(alert.publicly_leaked, 'alert.publicly_leaked');
  const resolution = optString(alert.resolution, 'alert.resolution');
  const org =
    optString(get(r, 'organization.login'), 'organization.login') ??
    optString(get(r, 'repository.owner.login'), 'repository.owner.login');

  let { confidence, severity } = at(VALIDITY, validity ?? 'unknown') ?? VALIDITY.unknown!;
  if (publiclyLeaked === true) {
    confidence = Math.max(confidence, 0.9);
    severity = 'critical';
  }
  if (action === 'resolved') {
    // Closed by a person: false_positive / used_in_tests / wont_fix say there is nothing to contain;
    // `revoked` says it is already contained.
    confidence = resolution === 'revoked' ? Math.min(confidence, 0.3) : 0.05;
    severity = 'info';
  }

  // A cloud access key id is not the secret: it names the key, so the alert meets the same key's
  // findings from the cloud (GuardDuty names long-term keys by their id). Never the secret itself.
  const secret = optString(alert.secret, 'alert.secret');
  const cloudKey =
    secret !== undefined && AWS_ACCESS_KEY_ID.test(secret) && !/secret/i.test(secretType)
      ? identity('aws', secret, 'api_key', { displayName: `AWS access key ${secret} (leaked in ${repo})` })
      : undefined;

  // The same alert goes through several deliveries; each lifecycle step is its own detection, a redelivery is not.
  const base = `${repo}/secret-scanning/${number}`;
  const id = checkId(
    action === 'created'
      ? base
      : action === 'validated'
        ? `${base}:validated:${validity ?? 'unknown'}`
        : `${base}:${action}`,
    'id',
  );

  return {
    id,
    source: 'github_secret_scanning',
    kind: 'secret_exposure',
    confidence: conf(confidence),
    severity,
    identity:
      cloudKey ??
      identity('github', `${secretType}:${repo}#${number}`, 'api_key', {
        tenant: org,
        displayName: `${displayName ?? secretType} in ${repo}`,
      }),
    occurredAt: toIso(
      action === 'created' ? alert.created_at : (alert.updated_at ?? alert.created_at),
      action === 'created' ? 'alert.created_at' : 'alert.updated_at',
    ),
    title: `${displayName ?? secretType} exposed in ${repo}`,
    evidence: compact({
      ruleName: secretType,
      action,
      secretType,
      secretTypeDisplayName: displayName,
      validity,
      publiclyLeaked,
      multiRepo: optBool(alert.multi_repo, 'alert.multi_repo'),
      pushProtectionBypassed: optBool(alert.push_protection_bypassed, 'alert.push_protection_bypassed'),
      resolution,
      repository: repo,
      organization: org,
      url: optString(alert.html_url, 'alert.html_url'),
      locationsUrl: optString(alert.locations_url, 'alert.locations_url'),
      sender: optString(get(r, 'sender.login'), 'sender.login'),
    }),
    raw: r,
  };
}

export const githubSecretScanning: Normalizer<'github_secret_scanning'> = {
  name: 'github_secret_scanning',
  detect: isGitHubSecretScanning,
  normalize: (r) => normalizeGitHubSecretScanning(r as Obj),
};
