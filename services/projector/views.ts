import { z } from 'zod';
import { ProposalReversibility } from '../../schemas/capabilities.ts';
import { IdentityRef } from '../../schemas/detection.ts';
import {
  ActionType,
  Actor,
  ApprovalMode,
  BlastRadius,
  GuardNote,
  NoActionReason,
} from '../../schemas/events.ts';

/**
 * The shapes of the projector's views, as the query API returns them and the HTTP API documents
 * them (OpenAPI is generated from these schemas; tests validate real responses against them).
 */

export const ACTION_STATUSES = [
  'proposed',
  'approved',
  'executed',
  'verified',
  'rolled_back',
  'rejected',
  'expired',
  'failed',
] as const;
/** `verified` is a filter value only: a verified action has status `executed` and `verified: true`. */
export const ActionStatusFilter = z.enum(ACTION_STATUSES);
export type ActionStatusFilter = z.infer<typeof ActionStatusFilter>;
export const ActionStatus = z.enum([
  'proposed',
  'approved',
  'executed',
  'rolled_back',
  'rejected',
  'expired',
  'failed',
]);
export type ActionStatus = z.infer<typeof ActionStatus>;

export const CaseStatus = z.enum(['open', 'resolved']);
export type CaseStatus = z.infer<typeof CaseStatus>;
export const Verdict = z.enum(['benign', 'malicious']);

const Time = z.string().describe('RFC 3339 time');
const NullableTime = Time.nullable();

const ApprovalRecord = z.object({
  by: Actor,
  /** Display name of the approver: the human id, or `policy:<rule>@<version>`. */
  approver: z.string(),
  final: z.boolean(),
  argsDigest: z.string(),
  at: Time,
  eventId: z.string(),
});

export const ActionView = z.object({
  id: z.string(),
  caseId: z.string(),
  identity: IdentityRef,
  identityKey: z.string(),
  type: ActionType,
  stage: z.number().int(),
  ruleId: z.string(),
  policyId: z.string(),
  policyVersion: z.string(),
  /** Human proposer of an analyst-initiated action (rule `manual`); null when the policy proposed it. */
  proposedBy: z.string().nullable(),
  approvalMode: ApprovalMode,
  approvalReason: z.string(),
  /** The approval group a human decides it in (storm:, rule:, case:); null when automatic. */
  group: z.string().nullable().default(null),
  expiresAt: Time,
  status: ActionStatus,
  verified: z.boolean(),
  approvers: z.array(z.string()),
  approvals: z.array(ApprovalRecord),
  argsDigest: z.string(),
  args: z.record(z.string(), z.unknown()),
  detectionIds: z.array(z.string()),
  guards: z.array(GuardNote),
  blastRadius: BlastRadius,
  /** What the proposal said a rollback could not undo. */
  rollbackPlan: z.object({ complete: z.boolean(), notes: z.array(z.string()) }),
  /** What the acting provider can undo of this action (reversible, partially, irreversible), before approval. */
  reversibility: ProposalReversibility.nullable().default(null),
  coordination: z.object({ partner: z.string(), grant: z.string(), reason: z.string(), at: Time }).nullable(),
  rejection: z.object({ by: Actor, reason: z.string(), at: Time }).nullable(),
  claims: z.array(z.object({ executor: z.string(), attempt: z.number().int(), at: Time })),
  execution: z
    .object({
      provider: z.string(),
      idempotencyKey: z.string(),
      result: z.record(z.string(), z.unknown()),
      reconciled: z.boolean(),
    })
    .nullable(),
  probes: z.array(z.object({ probe: z.string(), ok: z.boolean(), detail: z.string() })).nullable(),
  failure: z
    .object({
      phase: z.enum(['apply', 'verify', 'rollback']),
      provider: z.string(),
      code: z.string(),
      message: z.string(),
      retriable: z.boolean(),
      attempts: z.number().int(),
      at: Time,
    })
    .nullable(),
  rollback: z
    .object({ restored: z.array(z.string()), residue: z.array(z.string()), complete: z.boolean(), at: Time })
    .nullable(),
  /** What the rollback could not restore (empty until rolled back). */
  residue: z.array(z.string()),
  proposedAt: Time,
  approvedAt: NullableTime,
  rejectedAt: NullableTime,
  expiredAt: NullableTime,
  executedAt: NullableTime,
  verifiedAt: NullableTime,
  failedAt: NullableTime,
  rolledBackAt: NullableTime,
  /** Global position of the last event that changed this view. */
  updatedPosition: z.number().int(),
});
export type ActionView = z.infer<typeof ActionView>;

export const CaseView = z.object({
  id: z.string(),
  identity: IdentityRef,
  identityKey: z.string(),
  status: CaseStatus,
  verdict: Verdict.nullable(),
  resolvedBy: Actor.nullable(),
  openedAt: Time,
  resolvedAt: NullableTime,
  detectionIds: z.array(z.string()),
  actionIds: z.array(z.string()),
  /** Detections of the case that led to no automatic action, and why (NoActionTaken). */
  noActions: z
    .array(z.object({ detectionId: z.string(), at: Time, reasons: z.array(NoActionReason) }))
    .default([]),
  /** Actions a rule in monitor mode would have proposed (ActionShadowed): counted, never executed. */
  shadowed: z.number().int().default(0),
  updatedPosition: z.number().int(),
});
export type CaseView = z.infer<typeof CaseView>;

export const DetectionView = z.object({
  eventId: z.string(),
  position: z.number().int(),
  id: z.string(),
  source: z.string(),
  kind: z.string(),
  confidence: z.number(),
  severity: z.string(),
  title: z.string().nullable(),
  occurredAt: Time,
  receivedAt: Time,
  caseId: z.string().nullable(),
});
export type DetectionView = z.infer<typeof DetectionView>;

export const TimelineEntry = z.object({
  position: z.number().int(),
  eventId: z.string(),
  type: z.string(),
  stream: z.string(),
  at: Time,
  summary: z.string(),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;

export const CaseDetail = CaseView.extend({
  detections: z.array(DetectionView),
  actions: z.array(ActionView),
  timeline: z.array(TimelineEntry),
});
export type CaseDetail = z.infer<typeof CaseDetail>;

export const IdentityView = z.object({
  identity: IdentityRef,
  identityKey: z.string(),
  openCaseId: z.string().nullable(),
  caseIds: z.array(z.string()),
  detectionCount: z.number().int(),
  firstSeenAt: Time,
  lastEventAt: Time,
  /** True while at least one executed action is in effect (not rolled back). */
  contained: z.boolean(),
  containment: z.array(
    z.object({
      actionId: z.string(),
      type: ActionType,
      caseId: z.string(),
      executedAt: Time,
      verified: z.boolean(),
      status: ActionStatus,
    }),
  ),
  pendingApprovals: z.array(
    z.object({
      actionId: z.string(),
      type: ActionType,
      caseId: z.string(),
      approvalMode: ApprovalMode,
      approvers: z.array(z.string()),
      expiresAt: Time,
    }),
  ),
  residue: z.array(
    z.object({
      actionId: z.string(),
      type: ActionType,
      caseId: z.string(),
      rolledBackAt: Time,
      complete: z.boolean(),
      residue: z.array(z.string()),
    }),
  ),
  updatedPosition: z.number().int(),
});
export type IdentityView = z.infer<typeof IdentityView>;

const AuditIndex = z.object({
  identity: z.string().nullable(),
  caseId: z.string().nullable(),
  actionId: z.string().nullable(),
  actor: z.string().nullable(),
  ruleId: z.string().nullable(),
  policyVersion: z.string().nullable(),
  actionType: z.string().nullable(),
});

/** One audit index row (no payload): what the index knows about an event. */
export const AuditRow = AuditIndex.extend({
  position: z.number().int(),
  eventId: z.string(),
  type: z.string(),
  stream: z.string(),
  occurredAt: Time,
  recordedAt: Time,
});
export type AuditRow = z.infer<typeof AuditRow>;

/** An audit result: the recorded event as stored, plus what the index extracted from it. */
export const AuditEvent = z.object({
  position: z.number().int(),
  id: z.string(),
  type: z.string(),
  stream: z.string(),
  revision: z.number().int().nullable(),
  occurredAt: Time,
  recordedAt: Time,
  causationId: z.string().nullable(),
  correlationId: z.string().nullable(),
  schemaVersion: z.number().int().nullable(),
  /** The payload as stored; null when the event is indexed but no longer in the store (see audit verify). */
  data: z.unknown(),
  missingFromStore: z.boolean(),
  index: AuditIndex,
});
export type AuditEvent = z.infer<typeof AuditEvent>;

export const AutomationView = z.object({
  paused: z.boolean(),
  by: Actor.nullable(),
  reason: z.string().nullable(),
  at: NullableTime,
  policy: z
    .object({ policyId: z.string(), version: z.string(), digest: z.string(), author: z.string(), at: Time })
    .nullable(),
});
export type AutomationView = z.infer<typeof AutomationView>;

export function page<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}
export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}
