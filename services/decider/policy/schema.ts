import { z } from 'zod';
import { TIERS } from '../../../schemas/catalogue.ts';
import { DetectionKind, IdentityType } from '../../../schemas/detection.ts';
import { ActionType, ApprovalMode } from '../../../schemas/events.ts';
import { Duration } from './duration.ts';

/** A stage of a rule's action ladder: narrow first, wider only after validation. */
export const Stage = z
  .object({
    action: ActionType,
    approval: ApprovalMode,
    /** How long a pending approval stays valid before ActionExpired. */
    ttl: Duration.optional(),
    /** Validation window: the earliest this stage may follow the previous one's approval. */
    after: Duration.optional(),
    /** Provider-specific arguments, part of the approved digest (e.g. requiredAction, role). */
    args: z.record(z.string(), z.unknown()).default({}),
    /**
     * `accept`: this stage may run automatically even where the provider cannot undo the action
     * (revoking a leaked token at once). Without it an irreversible action needs an analyst, and
     * `policy validate --providers` names the rule.
     */
    irreversible: z.literal('accept').optional(),
  })
  .strict();

export const Rule = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'rule ids are lower-case words joined by - . or _'),
    description: z.string().default(''),
    when: z
      .object({
        kinds: z.array(DetectionKind).min(1),
        minConfidence: z.number().min(0).max(1).default(0),
        /** Matching detections needed within `window`. */
        count: z.number().int().min(1).default(1),
        window: Duration.default(3600),
        distinctSources: z.number().int().min(1).default(1),
      })
      .strict(),
    identities: z
      .object({
        types: z.array(IdentityType).min(1).optional(),
        tiers: z.array(z.enum(TIERS)).min(1).optional(),
        tags: z.array(z.string()).min(1).optional(),
        /** Identity providers (IdentityRef.provider) the rule acts on; absent: all of them. */
        providers: z.array(z.string().min(1)).min(1).optional(),
      })
      .strict()
      .default({}),
    ladder: z.array(Stage).min(1),
    /** A catch-all: applies to a detection only when no other rule claims it (kind, confidence, identity match). */
    fallback: z.boolean().default(false),
    /**
     * `monitor`: the rule records what it would have proposed (ActionShadowed, once per case) and
     * never executes or asks anyone; for trying a new rule on live traffic. Default `enforce`.
     */
    mode: z.enum(['enforce', 'monitor']).default('enforce'),
  })
  .strict();

export const Budget = z
  .object({
    /** An action type, or "*" for every automatic action. */
    action: z.union([ActionType, z.literal('*')]),
    limit: z.number().int().min(0),
    window: Duration,
    /**
     * Counted across everything (every provider), per identity provider, per tenant, or per
     * proposing rule (a misfiring rule spends only its own budget).
     */
    scope: z.enum(['global', 'provider', 'tenant', 'rule']).default('global'),
    /** Only automatic actions proposed by these rules count against this budget (default: every rule). */
    rules: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

/**
 * Storm detection: a rule that fires on many distinct identities within `window`, far above its own
 * recent rate, is a storm; its automatic actions are held until an analyst resolves it or it subsides.
 */
const Storm = z
  .object({
    enabled: z.boolean().default(true),
    window: Duration.default(3600),
    /** Absolute floor: fewer distinct identities than this in a window is never a storm. */
    minIdentities: z.number().int().min(2).default(10),
    /** Relative: and at least this many times the rule's usual proposals per window. */
    baselineFactor: z.number().min(1).default(5),
    /** The rule's usual rate is measured over this period before the current window. */
    baselinePeriod: Duration.default(7 * 86400),
  })
  .strict();

const STORM_DEFAULTS = {
  enabled: true,
  window: 3600,
  minIdentities: 10,
  baselineFactor: 5,
  baselinePeriod: 7 * 86400,
};

export const Policy = z
  .object({
    id: z.string().min(1),
    version: z.string().min(1),
    description: z.string().default(''),
    defaults: z
      .object({
        /** Detections below this confidence are recorded but never open a case. */
        caseFloor: z.number().min(0).max(1).default(0.3),
        approvalTtl: Duration.default(4 * 3600),
        /** After a rejection or expiry, the same action is not proposed again in the case for this long. */
        cooldown: Duration.default(3600),
        /**
         * A detection received longer than this after it occurred is stale: it never triggers an
         * automatic action (an analyst decides, guard `stale`).
         */
        staleAfter: Duration.default(3600),
        /** How an identity missing from the catalogue is treated: assume the worst by default. */
        unknownIdentity: z
          .object({
            tier: z.enum(TIERS).default('production'),
            consumers: z.number().int().min(0).default(1),
          })
          .strict()
          .default({ tier: 'production', consumers: 1 }),
      })
      .strict()
      .default({
        caseFloor: 0.3,
        approvalTtl: 14400,
        cooldown: 3600,
        staleAfter: 3600,
        unknownIdentity: { tier: 'production', consumers: 1 },
      }),
    guards: z
      .object({
        breakGlass: z
          .object({ approval: z.enum(['analyst', 'two-person', 'never']).default('two-person') })
          .strict()
          .default({ approval: 'two-person' }),
        shared: z
          .object({ minConsumers: z.number().int().min(2).default(2) })
          .strict()
          .default({ minConsumers: 2 }),
        stagedContainment: z
          .object({
            tiers: z.array(z.enum(TIERS)).default(['production']),
            validationWindow: Duration.default(1800),
          })
          .strict()
          .default({ tiers: ['production'], validationWindow: 1800 }),
        budgets: z.array(Budget).default([]),
        storm: Storm.default(STORM_DEFAULTS),
      })
      .strict()
      .default({
        breakGlass: { approval: 'two-person' },
        shared: { minConsumers: 2 },
        stagedContainment: { tiers: ['production'], validationWindow: 1800 },
        budgets: [],
        storm: STORM_DEFAULTS,
      }),
    rules: z.array(Rule).min(1),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.rules.forEach((r, i) => {
      if (seen.has(r.id))
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${r.id}"` });
      seen.add(r.id);
    });
  });

export type Policy = z.infer<typeof Policy>;
export type PolicyInput = z.input<typeof Policy>;
export type Rule = z.infer<typeof Rule>;
export type Stage = z.infer<typeof Stage>;
export type Budget = z.infer<typeof Budget>;
