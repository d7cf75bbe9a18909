import type { Logger } from 'pino';
import type { z } from 'zod';
import type { ActionCapability } from '../../../schemas/capabilities.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import type { ActionType } from '../../../schemas/events.ts';

/** What the executor asks a provider to do: one approved action, exactly as proposed. */
export interface ProviderAction {
  /** Also the idempotency key: the same action id never has two effects. */
  actionId: string;
  action: ActionType;
  identity: IdentityRef;
  /** The proposal's exact arguments (bound to the approved digest). */
  args: Record<string, unknown>;
}

/** The identity's state before the action, as needed to put it back. JSON-serialisable. */
export type PriorState = Record<string, unknown>;
export type ApplyResult = Record<string, unknown>;

export interface Probe {
  probe: string;
  ok: boolean;
  detail: string;
}

export interface RevertResult {
  /** What was put back, in words an auditor reads. */
  restored: string[];
  /** What could NOT be put back (tokens valid until expiry, rotated secrets, third-party grants). */
  residue: string[];
}

/**
 * Provider port. Implementations throw ProviderError (platform/errors.ts) with `retriable` set
 * truthfully: network errors, 5xx and 429 are retriable; 4xx that mean "no such identity" or
 * "not allowed" are permanent.
 */
export interface IdentityProvider {
  readonly name: string;
  supports(action: ActionType): boolean;
  /** Read the state the action will change, before changing it. */
  capture(a: ProviderAction): Promise<PriorState>;
  /** Apply the action. Must be idempotent for the same actionId. */
  apply(a: ProviderAction, prior: PriorState): Promise<ApplyResult>;
  /**
   * Reconciliation after a crash between apply and recording it: is the effect already in place?
   * Lets the executor record the effect instead of calling the provider blindly a second time.
   */
  isApplied(a: ProviderAction, prior: PriorState): Promise<boolean>;
  /** Probe that the effect holds (sessions gone, account disabled, old refresh token refused). */
  verify(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<Probe[]>;
  /**
   * Restore the captured prior state, saying what could not be restored. An action that cannot be undone
   * (or whose undoing would do harm) throws RollbackRefusedError (platform/errors.ts) with the reason,
   * never returns as if it had been reverted.
   */
  revert(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<RevertResult>;
  /**
   * Tells the provider's own detection what the analysts concluded (Okta user risk, Entra
   * confirmCompromised / dismiss). Providers without such an API omit the method.
   */
  feedback?(
    identity: IdentityRef,
    verdict: Verdict,
    ctx: { caseId: string; actionId?: string },
  ): Promise<FeedbackCall[]>;
}

/**
 * Reversibility ('reversible' | 'partially' | 'irreversible') and ActionCapability ({ reversibility,
 * residue }: what one (provider, action) can undo, declared as data and shown before approval) are
 * contracts the decider reads too, so they live in schemas/capabilities.ts.
 */
export type { ActionCapability } from '../../../schemas/capabilities.ts';

export interface ProviderDeps {
  log: Logger;
  now: () => number;
  /**
   * The name recorded in events and keying the executor's circuit breaker (the providers-file key, or
   * its `name`). Optional: a provider that ignores it is renamed by the registry's builder.
   */
  name?: string;
  /** The data directory, for providers that keep files (the dry-run journal). */
  dataDir?: string;
}

/**
 * One entry of the provider registry: adding a provider is one file exporting this, plus one line in
 * providers/index.ts.
 */
export interface ProviderDefinition<C = unknown> {
  /** The `type` in the providers file and the identity's `provider`. */
  name: string;
  /**
   * Validates one providers-file entry without its `type` and `name` (the file handles those). Relative
   * paths in fields whose name ends in `File` are already resolved against the providers file.
   */
  configSchema: z.ZodType<C>;
  create(config: C, deps: ProviderDeps): IdentityProvider;
  /** The actions this provider can perform (absent: cannot), each with what a rollback can undo. */
  actions: Partial<Record<ActionType, ActionCapability>>;
}

export type Verdict = 'malicious' | 'benign';

export interface FeedbackCall {
  call: string;
  ok: boolean;
  detail: string;
}
