import { z } from 'zod';
import { ProposalReversibility } from './capabilities.ts';
import { CatalogueEntry } from './catalogue.ts';
import { IdentityRef, NormalizedDetection, Timestamp } from './detection.ts';

/**
 * The event catalogue. Every event travels in one envelope; `data` is typed per `type`.
 * `recordedAt` is wall-clock time set by the store at append and is the only field that
 * replay does not reproduce (fidelity compares everything else).
 */
export const SCHEMA_VERSION = 1;

export const ACTION_TYPES = [
  'revoke_sessions',
  'revoke_tokens',
  'force_step_up',
  'rotate_credential',
  'disable_account',
  'disable_service_account',
  'quarantine',
  'revoke_oauth_grant',
  'jit_reissue',
] as const;
export const ActionType = z.enum(ACTION_TYPES);
export type ActionType = z.infer<typeof ActionType>;

const APPROVAL_MODES = ['auto', 'analyst', 'two-person', 'external', 'never'] as const;
export const ApprovalMode = z.enum(APPROVAL_MODES);
export type ApprovalMode = z.infer<typeof ApprovalMode>;

export const Actor = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('policy'),
    ruleId: z.string(),
    policyId: z.string(),
    policyVersion: z.string(),
  }),
  z.object({ kind: z.literal('human'), id: z.string().min(1), role: z.string().optional() }),
  z.object({ kind: z.literal('system'), id: z.string().min(1) }),
]);
export type Actor = z.infer<typeof Actor>;

export const GuardNote = z.object({
  guard: z.string(),
  effect: z.string(),
  reason: z.string(),
});
export type GuardNote = z.infer<typeof GuardNote>;

export const BlastRadius = z.object({
  consumers: z.number().int(),
  tier: z.string(),
  shared: z.boolean(),
  thirdParty: z.boolean(),
  reversible: z.boolean(),
  /** Automatic actions of this type already spent in the current budget window. */
  budgetUsed: z.number().int(),
  /** -1 when no budget applies (the action is not automatic, or no budget names it). */
  budgetLimit: z.number().int(),
  /** The budget keys an automatic action was counted against. */
  budgetKeys: z.array(z.string()).default([]),
});
export type BlastRadius = z.infer<typeof BlastRadius>;

/** Why a detection that opened or joined a case led to no automatic action. */
const NO_ACTION_CODES = [
  'below_case_floor',
  'no_rule',
  'gathering',
  'pending',
  'cooldown',
  'contained',
  'validation_window',
  'approval_required',
  'budget',
  'guard',
  'stale',
  'paused',
  'storm_hold',
  'monitor',
  'never',
] as const;
export const NoActionReason = z.object({
  code: z.enum(NO_ACTION_CODES),
  /** The rule the reason is about, when it is about one. */
  ruleId: z.string().optional(),
  /** For people: e.g. "rule mfa-fatigue gathering evidence: 2/3 in 30m". */
  detail: z.string(),
});
export type NoActionReason = z.infer<typeof NoActionReason>;

const ActionRef = { actionId: z.string(), caseId: z.string(), identity: IdentityRef };

/**
 * Where a detection's raw vendor record is kept once it is recorded: in the event store's
 * content-addressed raw records, named by the SHA-256 of its JSON text (hex) and sized in UTF-8 bytes.
 */
export const RawRecordRef = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int() });
export type RawRecordRef = z.infer<typeof RawRecordRef>;

const EventData = {
  /**
   * As appended, the detection carries its `raw` record inline. As recorded, the store keeps the raw
   * record apart (stored once, content-addressed) and the event carries `rawRecord` in its place;
   * events recorded before that carry `raw` inline (platform/eventstore/raw-records.ts reads both).
   */
  DetectionReceived: z.object({
    detection: NormalizedDetection,
    rawRecord: RawRecordRef.optional(),
    /**
     * The detection joined an open case and nothing was done automatically: why (as NoActionTaken
     * says it for a detection that opens a case). Absent when it opened a case, joined none, or
     * led to an automatic action.
     */
    noAction: z.array(NoActionReason).min(1).optional(),
  }),
  IdentityCatalogued: z.object({ entry: CatalogueEntry, by: Actor }),
  CaseOpened: z.object({ caseId: z.string(), identity: IdentityRef, detectionIds: z.array(z.string()) }),
  /**
   * A detection opened a case and nothing was done automatically: why (each rule that could take
   * it, and each guard that held a proposal). Recorded in the same decision. A detection joining an
   * open case carries its reasons on its DetectionReceived (`noAction`) instead; stores written
   * before that hold a NoActionTaken for those too.
   */
  NoActionTaken: z.object({
    caseId: z.string(),
    identity: IdentityRef,
    detectionId: z.string(),
    reasons: z.array(NoActionReason).min(1),
  }),
  ActionProposed: z.object({
    ...ActionRef,
    action: ActionType,
    stage: z.number().int().min(1),
    ruleId: z.string(),
    policyId: z.string(),
    policyVersion: z.string(),
    detectionIds: z.array(z.string()),
    args: z.record(z.string(), z.unknown()),
    argsDigest: z.string(),
    blastRadius: BlastRadius,
    approval: z.object({
      mode: ApprovalMode,
      ttlSeconds: z.number().int().positive(),
      expiresAt: Timestamp,
      reason: z.string(),
    }),
    guards: z.array(GuardNote),
    rollback: z.object({ complete: z.boolean(), notes: z.array(z.string()) }),
    /** What the provider that will act can undo (absent when no provider capabilities were known). */
    reversibility: ProposalReversibility.optional(),
    /**
     * The approval group a human decides this action in, with others like it: `storm:<stormId>`
     * while the proposing rule is held by a storm, else `rule:<ruleId>`. Absent on automatic actions.
     */
    group: z.string().optional(),
  }),
  /**
   * What a rule in monitor mode would have proposed: recorded and counted, never executed and never
   * put to a human. Replay reproduces it.
   */
  ActionShadowed: z.object({
    caseId: z.string(),
    identity: IdentityRef,
    ruleId: z.string(),
    action: ActionType,
    stage: z.number().int().min(1),
    policyVersion: z.string(),
    detectionIds: z.array(z.string()),
    /** The approval the action would have needed after the guards. */
    wouldNeed: ApprovalMode,
    guards: z.array(GuardNote),
  }),
  ActionApproved: z.object({
    ...ActionRef,
    argsDigest: z.string(),
    by: Actor,
    /** Two-person approvals: the first approval is recorded but not final. */
    final: z.boolean(),
    /** The approver's own words (why), kept for the audit trail. */
    comment: z.string().max(2000).optional(),
    /** Set when a human decided the action as part of an approval group (storm, rule or case). */
    groupId: z.string().optional(),
  }),
  ActionRejected: z.object({ ...ActionRef, by: Actor, reason: z.string(), groupId: z.string().optional() }),
  ActionExpired: z.object({ ...ActionRef, expiredAt: Timestamp }),
  /** The executor's claim on an action (first writer wins), carrying the prior state captured for rollback. */
  ExecutionClaimed: z.object({
    ...ActionRef,
    action: ActionType,
    executor: z.string(),
    attempt: z.number().int().min(1),
    priorState: z.record(z.string(), z.unknown()),
  }),
  ActionExecuted: z.object({
    ...ActionRef,
    action: ActionType,
    provider: z.string(),
    idempotencyKey: z.string(),
    result: z.record(z.string(), z.unknown()),
    priorState: z.record(z.string(), z.unknown()),
    reconciled: z.boolean().default(false),
  }),
  ActionFailed: z.object({
    ...ActionRef,
    action: ActionType,
    provider: z.string(),
    error: z.object({ code: z.string(), message: z.string(), retriable: z.boolean() }),
    attempts: z.number().int(),
    phase: z.enum(['apply', 'verify', 'rollback']),
  }),
  ActionVerified: z.object({
    ...ActionRef,
    probes: z.array(z.object({ probe: z.string(), ok: z.boolean(), detail: z.string() })),
  }),
  ActionRolledBack: z.object({
    ...ActionRef,
    action: ActionType,
    restored: z.array(z.string()),
    /** What could NOT be restored: tokens valid until expiry, rotated secrets, third-party grants. */
    residue: z.array(z.string()),
    complete: z.boolean(),
  }),
  /**
   * The analysts' verdict told to the provider's own detection (Okta user risk, Entra confirm
   * compromised / dismiss), by the executor, in stream feedback-<caseId>: each call and its outcome.
   */
  ProviderFeedbackSent: z.object({
    caseId: z.string(),
    identity: IdentityRef,
    verdict: z.enum(['benign', 'malicious']),
    provider: z.string(),
    calls: z.array(z.object({ call: z.string(), ok: z.boolean(), detail: z.string() })),
  }),
  CaseResolved: z.object({
    caseId: z.string(),
    identity: IdentityRef,
    verdict: z.enum(['benign', 'malicious']),
    by: Actor,
    /** The analyst's reasoning for the verdict, kept for the audit trail. */
    comment: z.string().max(2000).optional(),
  }),
  GuardTripped: z.object({
    guard: z.string(),
    actionType: ActionType,
    scope: z.string(),
    limit: z.number().int(),
    windowSeconds: z.number().int(),
    identity: IdentityRef,
  }),
  /**
   * A rule fired on many distinct identities in a short window, far above its own recent rate:
   * its automatic actions are held (analyst approval, one grouped decision) until the storm is
   * resolved by an analyst or subsides.
   */
  StormDetected: z.object({
    stormId: z.string(),
    ruleId: z.string(),
    /** The source of the detection that tripped it. */
    source: z.string(),
    /** Distinct identities the rule fired on within the window, this one included. */
    identityCount: z.number().int(),
    identities: z.array(z.object({ provider: z.string(), id: z.string() })),
    windowSeconds: z.number().int(),
    /** The rule's usual proposals per window over the baseline period before this window. */
    baseline: z.number(),
    /** The identity count that trips a storm for this rule now: max(minIdentities, factor × baseline). */
    threshold: z.number().int(),
  }),
  StormResolved: z.object({
    stormId: z.string(),
    ruleId: z.string(),
    /** `analyst`: a human ended the hold; `subsided`: the rule's rate fell back below half the threshold. */
    reason: z.enum(['analyst', 'subsided']),
    by: Actor,
    comment: z.string().max(2000).optional(),
  }),
  CoordinationRequested: z.object({
    ...ActionRef,
    partner: z.string(),
    grant: z.string(),
    reason: z.string(),
  }),
  PolicyActivated: z.object({
    policyId: z.string(),
    version: z.string(),
    digest: z.string(),
    author: z.string(),
    policy: z.unknown(),
  }),
  /**
   * A detection refused because its `source` + `id` (unique across the system) is already recorded
   * for another identity or with other content: what was refused, and what holds the key.
   */
  DetectionConflicted: z.object({
    source: z.string(),
    id: z.string(),
    reason: z.enum(['other_identity', 'different_content']),
    recorded: z.object({
      identity: z.object({ provider: z.string(), id: z.string(), type: z.string().optional() }),
      stream: z.string(),
      eventId: z.string().optional(),
    }),
    refused: z.object({ identity: IdentityRef, stream: z.string(), detection: NormalizedDetection }),
  }),
  AutomationPaused: z.object({ by: Actor, reason: z.string() }),
  AutomationResumed: z.object({ by: Actor, reason: z.string() }),
} as const;

export type EventType = keyof typeof EventData;
export const EVENT_TYPES = Object.keys(EventData) as EventType[];
export type EventDataOf<T extends EventType> = z.infer<(typeof EventData)[T]>;

/** An event as the core produces it: everything but store-assigned fields. */
export type NewEvent<T extends EventType = EventType> = {
  [K in T]: {
    id: string;
    type: K;
    stream: string;
    occurredAt: string;
    causationId: string | null;
    correlationId: string | null;
    schemaVersion: number;
    data: EventDataOf<K>;
  };
}[T];

/** An event as read back from a store. */
export type RecordedEvent<T extends EventType = EventType> = NewEvent<T> & {
  recordedAt: string;
  /** 0-based revision within its stream. */
  revision: number;
  /** Global, gap-tolerant, strictly increasing position (bigint-safe as number up to 2^53). */
  position: number;
};

export function identityStream(identity: { provider: string; id: string }): string {
  return `identity-${identity.provider}:${identity.id}`;
}
export function actionStream(actionId: string): string {
  return `action-${actionId}`;
}
/** Where the executor records the verdict feedback it sent to a provider for a case. */
export function feedbackStream(caseId: string): string {
  return `feedback-${caseId}`;
}
export const CONTROL_STREAM = 'control-automation';
export const POLICY_STREAM = 'control-policy';
export const CATALOGUE_STREAM = 'control-catalogue';
/** Detections refused as conflicting duplicates (DetectionConflicted), for the auditor. */
export const DETECTION_CONFLICTS_STREAM = 'audit-detection-conflicts';
