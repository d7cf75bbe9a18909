import type { CatalogueEntry } from '../../../schemas/catalogue.ts';
import type { ActionType } from '../../../schemas/events.ts';
import type { Budget, Policy, Rule } from '../policy/schema.ts';
import { compileUntaken, type Untaken } from './no-action.ts';

/** A policy indexed for the hot path: rules by detection kind, windows in ms. */
export interface CompiledPolicy {
  policy: Policy;
  digest: string;
  rulesByKind: Map<string, Rule[]>;
  /** The longest rule window: evidence older than this can never count again. */
  maxWindowMs: number;
  /**
   * Per detection kind, the lowest confidence any multi-detection rule (count or distinct sources
   * above one) counts. Only such rules read remembered evidence (single-detection rules look at the
   * detection in hand), so evolve need not remember a detection below its kind's floor, nor one of
   * a kind no such rule names.
   */
  evidenceFloor: ReadonlyMap<string, number>;
  /** Why no rule takes a detection, per kind (below the case floor, or no rule at its confidence). */
  untaken: Untaken;
  /** The budgets an automatic action of this type counts against (rule-scoped ones only for their rules). */
  budgetsFor(action: ActionType, ruleId: string): Budget[];
}

export function compilePolicy(policy: Policy, digest: string): CompiledPolicy {
  const rulesByKind = new Map<string, Rule[]>();
  let maxWindowMs = 0;
  const evidenceFloor = new Map<string, number>();
  for (const rule of policy.rules) {
    if (rule.when.count > 1 || rule.when.distinctSources > 1) {
      for (const kind of rule.when.kinds) {
        evidenceFloor.set(
          kind,
          Math.min(evidenceFloor.get(kind) ?? Number.POSITIVE_INFINITY, rule.when.minConfidence),
        );
      }
    }
    for (const kind of rule.when.kinds) {
      const list = rulesByKind.get(kind) ?? [];
      list.push(rule);
      rulesByKind.set(kind, list);
    }
    maxWindowMs = Math.max(maxWindowMs, rule.when.window * 1000);
  }
  // Fallback rules last, so a specific rule can claim a detection before a catch-all sees it.
  for (const list of rulesByKind.values()) list.sort((a, b) => Number(a.fallback) - Number(b.fallback));
  const budgetCache = new Map<string, Budget[]>();
  return {
    policy,
    digest,
    rulesByKind,
    maxWindowMs,
    evidenceFloor,
    untaken: compileUntaken(policy, rulesByKind),
    budgetsFor(action, ruleId) {
      const cacheKey = `${action} ${ruleId}`;
      let b = budgetCache.get(cacheKey);
      if (!b) {
        b = policy.guards.budgets.filter(
          (x) => (x.action === '*' || x.action === action) && (!x.rules || x.rules.includes(ruleId)),
        );
        budgetCache.set(cacheKey, b);
      }
      return b;
    },
  };
}

export function ruleSelects(rule: Rule, entry: CatalogueEntry): boolean {
  const sel = rule.identities;
  if (sel.types && !sel.types.includes(entry.type)) return false;
  if (sel.tiers && !sel.tiers.includes(entry.tier)) return false;
  if (sel.tags && !sel.tags.some((t) => entry.tags.includes(t))) return false;
  if (sel.providers && !sel.providers.includes(entry.provider)) return false;
  return true;
}

/**
 * The key a budget counts under: e.g. `disable_account@tenant:okta/acme`, `*@global`,
 * `revoke_sessions@rule:known-compromise`.
 */
export function budgetKey(
  b: Budget,
  entry: Pick<CatalogueEntry, 'provider' | 'tenant'>,
  ruleId: string,
): string {
  switch (b.scope) {
    case 'global':
      return `${b.action}@global`;
    case 'provider':
      return `${b.action}@provider:${entry.provider}`;
    case 'tenant':
      return `${b.action}@tenant:${entry.provider}/${entry.tenant ?? '-'}`;
    case 'rule':
      return `${b.action}@rule:${ruleId}`;
  }
}
