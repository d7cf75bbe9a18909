import { z } from 'zod';
import { ConflictError, NotFoundError } from '../../../platform/errors.ts';
import type { EventStore } from '../../../platform/eventstore/port.ts';
import type { ApiRoutes } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';

/** Storms: an analyst ends the hold a storm put on its rule (the hold also ends when it subsides). */

const StormParams = z.strictObject({ stormId: z.string().min(1).max(300) });
const ResolveBody = z.strictObject({ comment: z.string().trim().max(2000).optional() });

/** The storm's StormDetected and whether it was already resolved, from the event store. */
async function findStorm(store: EventStore, stormId: string) {
  let detected: { ruleId: string } | undefined;
  let resolved = false;
  let after = 0;
  for (;;) {
    const page = await store.readAll({ after, limit: 5000, types: ['StormDetected', 'StormResolved'] });
    for (const e of page) {
      if (e.type === 'StormDetected' && e.data.stormId === stormId) detected = { ruleId: e.data.ruleId };
      else if (e.type === 'StormResolved' && e.data.stormId === stormId) resolved = true;
    }
    if (page.length < 5000) break;
    after = page[page.length - 1]!.position;
  }
  return detected ? { ...detected, resolved } : undefined;
}

export const stormRoutes: ApiRoutes = async (app, { ctx }) => {
  const deps = ctx;
  addRoute(app, ctx.auth, {
    method: 'POST',
    url: '/v1/storms/:stormId/resolve',
    roles: rolesFor('POST /v1/storms/:stormId/resolve'),
    summary: "End a storm's hold: its rule may act automatically again",
    description:
      'Records StormResolved (reason analyst, by the authenticated principal). Only identities after it count towards the next storm of the rule. 404 for an unknown storm, 409 when it is already resolved (by an analyst or because it subsided).',
    tags: ['actions'],
    params: StormParams,
    body: ResolveBody,
    response: {
      200: z.object({
        stormId: z.string(),
        ruleId: z.string(),
        event: z.object({ id: z.string(), type: z.string() }),
      }),
      400: ErrorBody,
      401: ErrorBody,
      403: ErrorBody,
      404: ErrorBody,
      409: ErrorBody,
    },
    handler: async ({ params, body, principal }) => {
      const storm = await findStorm(deps.store, params.stormId);
      if (!storm) throw new NotFoundError('storm', params.stormId);
      if (storm.resolved) throw new ConflictError(`storm ${params.stormId} is already resolved`);
      const e = await deps.automation.resolveStorm(params.stormId, storm.ruleId, principal!.id, body.comment);
      await deps.settle();
      return { stormId: params.stormId, ruleId: storm.ruleId, event: { id: e.id, type: e.type } };
    },
  });
};
