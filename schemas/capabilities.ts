import { z } from 'zod';

/**
 * What an identity provider can undo, declared per (provider, action) by each provider adapter
 * (services/executor/providers) and handed to the decider as data: the proposal, the approval request,
 * explain and replay show it before anyone approves.
 */
const REVERSIBILITY = ['reversible', 'partially', 'irreversible'] as const;
export const Reversibility = z.enum(REVERSIBILITY);
export type Reversibility = z.infer<typeof Reversibility>;

export const ActionCapability = z.object({
  reversibility: Reversibility,
  /** What a rollback cannot put back, in words an analyst reads. */
  residue: z.array(z.string()),
});
export type ActionCapability = z.infer<typeof ActionCapability>;

/**
 * The configured providers' capabilities, keyed like the providers file: by the identity provider name
 * detections carry (IdentityRef.provider), '*' for every other. `type` is the registered provider.
 */
export type ProviderCapabilities = Readonly<
  // Actions keyed by ActionType (schemas/events.ts, which imports this module: keys are plain strings here).
  Record<string, { type: string; actions: Partial<Record<string, ActionCapability>> }>
>;

/** The (provider, action) reversibility recorded on a proposal. */
export const ProposalReversibility = z.object({
  /** The providers-file entry acting on the identity (its key, or '*'). */
  provider: z.string(),
  /** The registered provider type (keycloak, aws, okta, …). */
  type: z.string(),
  reversibility: Reversibility,
  residue: z.array(z.string()),
});
export type ProposalReversibility = z.infer<typeof ProposalReversibility>;

/**
 * The capability that applies to an action on an identity of `identityProvider`: undefined when no
 * capabilities are known (nothing configured) or no provider entry covers the identity; `null` when the
 * covering provider cannot perform the action at all.
 */
export function reversibilityFor(
  caps: ProviderCapabilities | undefined,
  identityProvider: string,
  action: string,
): ProposalReversibility | null | undefined {
  if (!caps) return undefined;
  const key = caps[identityProvider] ? identityProvider : caps['*'] ? '*' : undefined;
  if (key === undefined) return undefined;
  const entry = caps[key]!;
  const cap = entry.actions[action];
  if (!cap) return null;
  return { provider: key, type: entry.type, reversibility: cap.reversibility, residue: [...cap.residue] };
}
