import type { ProposalReversibility } from '../../../../schemas/capabilities.ts';
import type { CatalogueEntry } from '../../../../schemas/catalogue.ts';
import type { ActionType, ApprovalMode, GuardNote } from '../../../../schemas/events.ts';
import type { Stage } from '../../policy/schema.ts';
import type { DeciderContext } from '../context.ts';
import type { IdentityState } from '../types.ts';

/** Budget use within one decision, before the ledger has seen any of it. */
export interface DecisionBudget {
  /** Automatic actions this decision already counted per budget key. */
  spent: Map<string, number>;
  /** Budget keys this decision already raised GuardTripped for. */
  tripped: Set<string>;
}

/** What a guard sees: the intended action's identity, the rule behind it, and when it is decided. */
export interface GuardContext {
  entry: CatalogueEntry;
  state: IdentityState;
  ctx: DeciderContext;
  atMs: number;
  /** The proposing rule's id, or `manual` for a human proposal. */
  ruleId: string;
  /** When the triggering detection happened (event time); null for a human proposal. */
  occurredAtMs: number | null;
  /** The triggering detection's source (`manual` for a human proposal). */
  source: string;
  /** The ladder stage being proposed (its approval and whether it accepts irreversible actions). */
  stage: Pick<Stage, 'approval' | 'irreversible'>;
  budget: DecisionBudget;
}

/** The action being planned; guards read and tighten it in order. */
export interface PlanDraft {
  action: ActionType;
  /** What the acting provider can undo of `action`, when its capabilities are known (set by the irreversible guard). */
  reversibility: ProposalReversibility | undefined;
  mode: ApprovalMode;
  guards: GuardNote[];
  rollbackNotes: string[];
  budgetUsed: number;
  budgetLimit: number;
  budgetKeys: string[];
  trips: Array<{ key: string; limit: number; windowSeconds: number }>;
  /** Set by the storm guard: the storm this action was held by, or newly raised. */
  storm: StormNote | null;
}

interface StormNote {
  stormId: string;
  /** Set when this decision raises the storm (emits StormDetected). */
  raised: {
    identities: Array<{ provider: string; id: string }>;
    windowSeconds: number;
    baseline: number;
    threshold: number;
    source: string;
  } | null;
  /** A storm of this rule that this decision found subsided (emits StormResolved first). */
  subsided: string | null;
}

/**
 * One guard: overrides the rule's intended action or approval for this identity. Guards only ever
 * make an approval stricter (or a destructive action narrower); they run in the order of GUARDS.
 */
export interface Guard {
  readonly name: string;
  apply(plan: PlanDraft, g: GuardContext): void;
}

/** Approval modes from least to most human involvement. */
export const MODE_RANK: Record<ApprovalMode, number> = {
  auto: 0,
  analyst: 1,
  'two-person': 2,
  external: 3,
  never: 4,
};

/** Degrades an automatic plan to analyst approval, noting which guard did it and why. */
export function requireAnalyst(plan: PlanDraft, guard: string, reason: string): void {
  if (plan.mode !== 'auto') return;
  plan.guards.push({ guard, effect: 'approval auto -> analyst', reason });
  plan.mode = 'analyst';
}
