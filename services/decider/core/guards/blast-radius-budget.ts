import { budgetKey } from '../compiled-policy.ts';
import type { Guard } from './types.ts';

/**
 * At most N automatic actions per budget key and window: beyond that an analyst decides and
 * GuardTripped is raised (once per exhaustion of a key). Runs last: only what is still automatic
 * after every other guard spends budget.
 */
export const blastRadiusBudget: Guard = {
  name: 'blast_radius_budget',
  apply(plan, { entry, ctx, atMs, budget, ruleId }) {
    if (plan.mode !== 'auto') return;
    for (const b of ctx.policy.budgetsFor(plan.action, ruleId)) {
      const key = budgetKey(b, entry, ruleId);
      const used = ctx.budget.used(key, atMs, b.window * 1000) + (budget.spent.get(key) ?? 0);
      if (plan.budgetLimit < 0 || b.limit - used < plan.budgetLimit - plan.budgetUsed) {
        plan.budgetUsed = used;
        plan.budgetLimit = b.limit;
      }
      if (used >= b.limit) {
        if (plan.mode === 'auto') {
          plan.guards.push({
            guard: 'blast_radius_budget',
            effect: 'approval auto -> analyst',
            reason: `budget ${key}: ${used} automatic actions in ${b.window}s, limit ${b.limit}`,
          });
          plan.mode = 'analyst';
        }
        // Once per exhaustion of a key: not again while the ledger says so, nor twice in one decision
        // (two proposals, or two budgets with the same action and scope but different windows).
        if (!ctx.budget.tripped(key) && !budget.tripped.has(key)) {
          budget.tripped.add(key);
          plan.trips.push({ key, limit: b.limit, windowSeconds: b.window });
        }
      }
      // An action counts once per key, however many budgets share that key.
      if (!plan.budgetKeys.includes(key)) plan.budgetKeys.push(key);
    }
    if (plan.mode === 'auto') {
      for (const key of plan.budgetKeys) budget.spent.set(key, (budget.spent.get(key) ?? 0) + 1);
    } else {
      plan.budgetKeys.length = 0;
    }
  },
};
