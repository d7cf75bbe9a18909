import type { CatalogueEntry } from '../../../schemas/catalogue.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import type { ActionType, ApprovalMode } from '../../../schemas/events.ts';
import type { SeenFields } from './dedupe.ts';

// The decider's input is a contract between services (the API submits human commands through it).
export type { DeciderInput, HumanActor } from '../../../schemas/decider-input.ts';

type ActionStatus = 'pending' | 'approved' | 'rejected' | 'expired';

export interface ActionState {
  actionId: string;
  action: ActionType;
  ruleId: string;
  stage: number;
  mode: ApprovalMode;
  status: ActionStatus;
  argsDigest: string;
  /** Human proposer of record (manual proposals); null when the policy proposed it. */
  proposedBy: string | null;
  approvers: string[];
  proposedAtMs: number;
  expiresAtMs: number;
  /** When it was approved, rejected or expired. */
  decidedAtMs: number | null;
  proposalEventId: string;
}

interface CaseState {
  caseId: string;
  openedAtMs: number;
  actions: ActionState[];
  /** Rules in monitor mode that already recorded what they would have done in this case. */
  shadowedRules: string[];
}

export interface EvidenceItem {
  detectionId: string;
  eventId: string;
  atMs: number;
  kind: string;
  confidence: number;
  source: string;
}

/**
 * Everything the decider remembers about one identity; rebuilt from its stream by evolve. Dedupe
 * (SeenFields): the detections already received, keyed by source + id; see `hasSeen`.
 */
export interface IdentityState extends SeenFields {
  identity: IdentityRef | null;
  /** Short, URL-safe tag derived from the identity key; part of case and action ids. */
  tag: string;
  /** The identity's event stream name (kept so the hot path does not rebuild it per decision). */
  stream: string;
  /** `det-<tag>-`: DetectionReceived ids start with it (one string built per identity, not per detection). */
  detectionIdPrefix: string;
  /** Detections still inside the longest rule window, oldest first. */
  evidence: EvidenceItem[];
  caseSeq: number;
  openCase: CaseState | null;
  /**
   * `openCase.caseId`, held here too: every detection of an identity with an open case carries it
   * (correlationId), and reading it from the state spares a second object's cache line per decision.
   */
  openCaseId: string | null;
}

/** A read-only view of the identity catalogue as of a point in event time. */
export interface CatalogueView {
  lookup(identity: Pick<IdentityRef, 'provider' | 'id'>, atMs: number): CatalogueEntry | undefined;
}

/** A read-only view of automatic-action budgets, maintained outside the per-identity core. */
export interface BudgetView {
  /**
   * Automatic actions already counted for this budget key in the fullest window of `windowMs` that
   * contains `atMs`: (atMs - windowMs, atMs] when decisions arrive in time order.
   */
  used(key: string, atMs: number, windowMs: number): number;
  /** Whether GuardTripped was already raised for this key and not yet cleared. */
  tripped(key: string): boolean;
}

/** A storm holding a rule's automatic actions, as the ledger knows it. */
export interface ActiveStorm {
  stormId: string;
  ruleId: string;
  /** The identity count that tripped it (the subsiding test compares against half of it). */
  threshold: number;
  raisedAtMs: number;
}

/** A read-only view of which identities each rule fired on, and of active storms. */
export interface StormView {
  active(ruleId: string): ActiveStorm | undefined;
  /** When the rule's last storm was resolved (-Infinity if never): identities before it no longer count. */
  resolvedAtMs(ruleId: string): number;
  /**
   * The distinct identities (with `self`) of the fullest window of `windowMs` containing `atMs`, counting
   * only firings after `notBeforeMs`. Decisions across identities do not always arrive in time order,
   * so windows ending after `atMs` count too: no window ever holds a storm's worth unnoticed.
   */
  busiestWindow(
    ruleId: string,
    atMs: number,
    windowMs: number,
    notBeforeMs: number,
    self: string,
  ): Set<string>;
  /** `busiestWindow(…).size`, counted no further than `stopAt`: min(size, stopAt). */
  busiestCount(
    ruleId: string,
    atMs: number,
    windowMs: number,
    notBeforeMs: number,
    self: string,
    stopAt: number,
  ): number;
  /** How many firings busiestWindow would look at: one more bounds the identities it can find. */
  firingsNear(ruleId: string, atMs: number, windowMs: number, notBeforeMs: number): number;
  /** Proposals by the rule within (fromMs, toMs]. */
  proposals(ruleId: string, fromMs: number, toMs: number): number;
}
