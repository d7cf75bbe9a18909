import { type Guard, requireAnalyst } from './types.ts';

/** An identity used by several consumers: acting on it disrupts all of them, so an analyst decides. */
export const sharedIdentity: Guard = {
  name: 'shared_identity',
  apply(plan, { entry, ctx }) {
    if (entry.consumers < ctx.policy.policy.guards.shared.minConsumers) return;
    requireAnalyst(plan, 'shared_identity', `shared by ${entry.consumers} consumers`);
  },
};
