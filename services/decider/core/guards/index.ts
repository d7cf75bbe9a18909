import { automationPaused } from './automation-paused.ts';
import { blastRadiusBudget } from './blast-radius-budget.ts';
import { breakGlass } from './break-glass.ts';
import { irreversible } from './irreversible.ts';
import { sharedIdentity } from './shared-identity.ts';
import { stagedContainment } from './staged-containment.ts';
import { stale } from './stale.ts';
import { stormHold } from './storm-hold.ts';
import { thirdParty } from './third-party.ts';
import type { Guard } from './types.ts';
import { unmanagedSecrets } from './unmanaged-secrets.ts';

/**
 * Every guard, in the order they apply to a rule's intended action. Adding a guard is a file in
 * this folder plus a line here. Order matters where guards interact: the action is settled first
 * (unmanaged secrets), then the approval is tightened, and the budget runs last so only actions
 * that are still automatic spend it.
 */
export const GUARDS: readonly Guard[] = [
  unmanagedSecrets,
  breakGlass,
  thirdParty,
  sharedIdentity,
  stagedContainment,
  stale,
  automationPaused,
  irreversible,
  stormHold,
  blastRadiusBudget,
];
