import { type Guard, MODE_RANK } from './types.ts';

/** Break-glass identities keep the company recoverable: never acted on automatically. */
export const breakGlass: Guard = {
  name: 'break_glass',
  apply(plan, { entry, ctx }) {
    if (!entry.breakGlass) return;
    const floor = ctx.policy.policy.guards.breakGlass.approval;
    if (MODE_RANK[plan.mode] >= MODE_RANK[floor]) return;
    plan.guards.push({
      guard: 'break_glass',
      effect: `approval ${plan.mode} -> ${floor}`,
      reason: 'break-glass identities are never acted on automatically',
    });
    plan.mode = floor;
  },
};
