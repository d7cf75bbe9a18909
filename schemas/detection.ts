import { z } from 'zod';

export const DETECTION_KINDS = [
  'impossible_travel',
  'anomalous_token_use',
  'secret_exposure',
  'known_compromise',
  'suspicious_api_use',
  'credential_abuse',
  'mfa_fatigue',
  'privilege_escalation',
  'other',
] as const;
export const IDENTITY_TYPES = ['human', 'service_account', 'oauth_app', 'api_key', 'workload'] as const;
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

export const DetectionKind = z.enum(DETECTION_KINDS);
export const IdentityType = z.enum(IDENTITY_TYPES);
export const Severity = z.enum(SEVERITIES);

/** RFC 3339 timestamp with a zone, as every SIEM we read can produce. */
export const Timestamp = z.iso.datetime({ offset: true });

export const IdentityRef = z.object({
  provider: z.string().min(1).max(128),
  id: z.string().min(1).max(512),
  type: IdentityType,
  /** Optional tenant (realm, org, account) for per-tenant budgets. */
  tenant: z.string().min(1).max(256).optional(),
  displayName: z.string().max(512).optional(),
});

export const NormalizedDetection = z.object({
  /** Source-unique id: the dedupe key together with `source`. */
  id: z.string().min(1).max(512),
  source: z.string().min(1).max(128),
  kind: DetectionKind,
  confidence: z.number().min(0).max(1),
  severity: Severity,
  identity: IdentityRef,
  occurredAt: Timestamp,
  title: z.string().max(1024).optional(),
  evidence: z.record(z.string(), z.unknown()).default({}),
  raw: z.unknown().optional(),
});

export type DetectionKind = z.infer<typeof DetectionKind>;
export type IdentityType = z.infer<typeof IdentityType>;
export type Severity = z.infer<typeof Severity>;
export type IdentityRef = z.infer<typeof IdentityRef>;
export type NormalizedDetection = z.infer<typeof NormalizedDetection>;
/** What callers may send: `evidence` may be omitted. */
export type NormalizedDetectionInput = z.input<typeof NormalizedDetection>;

/** The key that partitions Kafka and groups the decider: one writer per identity. */
export function identityKey(identity: Pick<IdentityRef, 'provider' | 'id'>): string {
  return `${identity.provider}:${identity.id}`;
}

/** Dedupe key of a detection across the whole system. */
export function detectionKey(d: Pick<NormalizedDetection, 'source' | 'id'>): string {
  return `${d.source}:${d.id}`;
}
