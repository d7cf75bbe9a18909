/**
 * Elastic Security detection alerts (`.alerts-security.alerts-<space>` documents), with ECS fields.
 * Field names: Elastic Security "Alert schema" reference (kibana.alert.*) and ECS (user.*, source.*,
 * user_agent.*); AWS principals from the Elastic AWS CloudTrail integration (aws.cloudtrail.user_identity.*),
 * OAuth clients from the Okta integration (okta.actor.*).
 *
 * Accepts the alert document itself, a search hit (`_source`), or a hit's `fields` (values in arrays);
 * keys may be dotted-flat, nested, or mixed.
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
  identity,
  isObj,
  kindFromMitre,
  kindFromText,
  lookup,
  type Obj,
  optNumber,
  optString,
  providerName,
  severityFromName,
  strings,
  toIso,
} from './util.ts';

/** The alert document inside a record: the record itself, its `_source`, or its `fields`. */
function elasticDoc(r: Obj): Obj | undefined {
  for (const doc of [r, r._source, r.fields]) {
    if (
      isObj(doc) &&
      (lookup(doc, 'kibana.alert.uuid') !== undefined || lookup(doc, 'kibana.alert.rule.name') !== undefined)
    )
      return doc;
  }
  return undefined;
}

const SEVERITY_CONFIDENCE: Record<Severity, number> = {
  info: 0.2,
  low: 0.35,
  medium: 0.55,
  high: 0.75,
  critical: 0.9,
};

/** Reads a scalar: the `fields` API wraps every value in an array. */
function scalar(doc: Obj, path: string): unknown {
  const v = lookup(doc, path);
  return Array.isArray(v) ? v[0] : v;
}

function normalizeElastic(r: Obj): NormalizedDetection {
  const doc =
    elasticDoc(r) ??
    fail('missing kibana.alert.uuid and kibana.alert.rule.name: not an Elastic Security alert');
  const s = (path: string) => optString(scalar(doc, path), path, true);
  const id = checkId(
    s('kibana.alert.uuid') ?? optString(r._id, '_id', true) ?? fail('missing kibana.alert.uuid'),
    'kibana.alert.uuid',
  );
  const ruleName = s('kibana.alert.rule.name');
  const occurredAt = toIso(scalar(doc, '@timestamp') ?? fail('missing @timestamp'), '@timestamp');

  const severity: Severity = severityFromName(s('kibana.alert.severity')) ?? 'medium';
  const riskScore = optNumber(scalar(doc, 'kibana.alert.risk_score'), 'kibana.alert.risk_score');
  let confidence = riskScore !== undefined ? riskScore / 100 : SEVERITY_CONFIDENCE[severity];
  // Building-block alerts are intermediate signals by design; they are not meant to be acted on alone.
  if (s('kibana.alert.building_block_type') !== undefined) confidence *= 0.5;
  if (s('kibana.alert.workflow_reason') === 'false_positive') confidence = Math.min(confidence, 0.05);

  const techniques = mitreTechniques(doc);
  const tags = strings(lookup(doc, 'kibana.alert.rule.tags'));
  const kind: DetectionKind =
    kindFromRuleName(ruleName) ??
    kindFromText(ruleName, s('kibana.alert.rule.description')) ??
    kindFromMitre(techniques) ??
    kindFromText(...tags) ??
    'other';

  return {
    id,
    source: 'elastic',
    kind,
    confidence: conf(confidence),
    severity,
    identity: elasticIdentity(s),
    occurredAt,
    ...(ruleName !== undefined ? { title: ruleName } : {}),
    evidence: compact({
      ruleName,
      ruleId: s('kibana.alert.rule.rule_id'),
      ruleUuid: s('kibana.alert.rule.uuid'),
      reason: s('kibana.alert.reason'),
      riskScore,
      mitreTechniques: techniques,
      tags,
      workflowStatus: s('kibana.alert.workflow_status'),
      buildingBlock: s('kibana.alert.building_block_type'),
      originalTime: s('kibana.alert.original_time'),
      eventAction: s('event.action'),
      ip: s('source.ip') ?? s('client.ip'),
      country: s('source.geo.country_iso_code') ?? s('source.geo.country_name'),
      city: s('source.geo.city_name'),
      userAgent: s('user_agent.original'),
      url: s('kibana.alert.url'),
    }),
    raw: r,
  };
}

function mitreTechniques(doc: Obj): string[] {
  const out = new Set<string>();
  // Flat (`fields` API) form.
  for (const t of strings(lookup(doc, 'kibana.alert.rule.threat.technique.id'))) out.add(t);
  for (const t of strings(lookup(doc, 'kibana.alert.rule.threat.technique.subtechnique.id'))) out.add(t);
  // Nested form: threat[] → technique[] → subtechnique[].
  const threat = lookup(doc, 'kibana.alert.rule.threat');
  for (const th of Array.isArray(threat) ? threat : [threat]) {
    const techs = isObj(th) ? th.technique : undefined;
    for (const te of Array.isArray(techs) ? techs : []) {
      if (!isObj(te)) continue;
      for (const sub of Array.isArray(te.subtechnique) ? te.subtechnique : []) {
        if (isObj(sub) && typeof sub.id === 'string') out.add(sub.id);
      }
      if (typeof te.id === 'string') out.add(te.id);
    }
  }
  // Sub-techniques first: they are the more specific signal.
  return [...out].sort((a, b) => b.length - a.length);
}

const MODULE_PROVIDER: Record<string, string> = {
  okta: 'okta',
  azure: 'entra',
  o365: 'entra',
  microsoft_defender_endpoint: 'entra',
  aws: 'aws',
  gcp: 'gcp',
  google_workspace: 'gcp',
  github: 'github',
};

function elasticIdentity(s: (path: string) => string | undefined): IdentityRef {
  const module = s('event.module') ?? s('event.dataset')?.split('.')[0];
  const provider = at(MODULE_PROVIDER, module) ?? providerName(s('cloud.provider')) ?? 'unknown';
  const tenant = s('cloud.account.id') ?? s('organization.id');

  // OAuth client acting on its own (Okta integration).
  const oktaActorType = s('okta.actor.type');
  if (oktaActorType === 'PublicClientApp' || oktaActorType === 'AppInstance') {
    const appId = s('okta.actor.id');
    if (appId !== undefined)
      return identity('okta', appId, 'oauth_app', {
        displayName: s('okta.actor.display_name') ?? s('okta.actor.alternate_id'),
      });
  }

  // AWS principal (CloudTrail integration): roles are identified by their ARN.
  const awsType = s('aws.cloudtrail.user_identity.type');
  const awsArn = s('aws.cloudtrail.user_identity.arn');
  const mapped = awsUserType(awsType);
  if (mapped !== undefined) {
    const id = mapped === 'human' ? (s('user.name') ?? awsArn) : (awsArn ?? s('user.name'));
    if (id !== undefined) return identity('aws', id, mapped, { tenant, displayName: s('user.name') });
  }

  const userId = s('user.id');
  const userName = s('user.name');
  const email = s('user.email');
  const id = userId ?? email ?? userName;
  if (id === undefined)
    return fail(
      'missing identity: none of user.id, user.email, user.name, aws.cloudtrail.user_identity.arn, okta.actor.id present',
    );
  const type: IdentityType = classifyPrincipal(userName ?? id) ?? 'human';
  const arnProvider = (userName ?? id).startsWith('arn:aws') ? 'aws' : undefined;
  return identity(provider === 'unknown' ? (arnProvider ?? provider) : provider, id, type, {
    tenant: s('user.domain') ?? tenant,
    displayName: email ?? userName,
  });
}

export const elastic: Normalizer<'elastic'> = {
  name: 'elastic',
  detect: (r) => elasticDoc(r) !== undefined,
  normalize: (r) => normalizeElastic(r as Obj),
};
