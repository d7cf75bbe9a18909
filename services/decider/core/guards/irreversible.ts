import { irreversibleGuard, proposalReversibility } from '../reversibility.ts';
import type { Guard } from './types.ts';

/**
 * What the acting provider can undo of the (by now settled) action; an action it cannot undo runs
 * automatically only where the rule's stage says `irreversible: accept`, otherwise an analyst decides.
 */
export const irreversible: Guard = {
  name: 'irreversible',
  apply(plan, { ctx, entry, stage }) {
    plan.reversibility = proposalReversibility(ctx.capabilities, entry.provider, plan.action);
    const note = irreversibleGuard(plan.reversibility, stage, plan.mode);
    if (!note) return;
    plan.guards.push(note);
    plan.mode = 'analyst';
  },
};
