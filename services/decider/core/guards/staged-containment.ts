import { DISABLING } from '../actions.ts';
import { type Guard, requireAnalyst } from './types.ts';

/** Production identities: disabling before a narrower stage was approved needs an analyst. */
export const stagedContainment: Guard = {
  name: 'staged_containment',
  apply(plan, { entry, ctx, state }) {
    if (!DISABLING.has(plan.action)) return;
    if (!ctx.policy.policy.guards.stagedContainment.tiers.includes(entry.tier)) return;
    const narrowedBefore =
      state.openCase?.actions.some((a) => a.status === 'approved' && !DISABLING.has(a.action)) ?? false;
    if (narrowedBefore) return;
    requireAnalyst(
      plan,
      'staged_containment',
      `${entry.tier} identity: disabling before a narrower stage needs an analyst`,
    );
  },
};
