import type { ProviderCapabilities } from '../../../schemas/capabilities.ts';
import type { CompiledPolicy } from './compiled-policy.ts';
import type { BudgetView, CatalogueView, StormView } from './types.ts';

/** What a decision may read besides the identity's own state: policy, catalogue, cross-identity ledgers. */
export interface DeciderContext {
  policy: CompiledPolicy;
  catalogue: CatalogueView;
  budget: BudgetView;
  storms: StormView;
  /** Kill switch: while paused nothing is auto-approved. */
  paused: boolean;
  /** What the configured providers can undo, per identity provider (absent: not known). */
  capabilities?: ProviderCapabilities | undefined;
}
