import { type Guard, requireAnalyst } from './types.ts';

/**
 * A detection that reached Tourniquet long after it happened (a SIEM backlog, a re-sent archive)
 * describes a situation that may be over: it never acts automatically, an analyst decides. Measured
 * from the detection's `occurredAt` to the decision time (its receipt, live and in replay).
 */
export const stale: Guard = {
  name: 'stale',
  apply(plan, { ctx, atMs, occurredAtMs }) {
    if (occurredAtMs === null) return;
    const limitSeconds = ctx.policy.policy.defaults.staleAfter;
    const ageMs = atMs - occurredAtMs;
    if (ageMs <= limitSeconds * 1000) return;
    requireAnalyst(
      plan,
      'stale',
      `detection received ${Math.round(ageMs / 1000)}s after it occurred (limit ${limitSeconds}s)`,
    );
  },
};
