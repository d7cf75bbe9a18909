import { z } from 'zod';
import { metrics } from '../../../platform/metrics.ts';
import type { ApiRoutes } from '../context.ts';
import { registerDocs } from '../docs.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';

/** Operations: metrics, liveness, readiness and the API documentation (Swagger UI). */
export const opsRoutes: ApiRoutes = async (app, { ctx }) => {
  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/metrics',
    roles: rolesFor('GET /metrics'),
    summary: 'Prometheus metrics',
    tags: ['ops'],
    produces: 'text/plain',
    response: { 200: { type: 'string' }, 401: ErrorBody, 403: ErrorBody },
    handler: async ({ reply }) => {
      const text = await metrics.metrics();
      reply.header('content-type', metrics.contentType);
      return reply.send(text);
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/healthz',
    roles: rolesFor('GET /healthz'),
    summary: 'Liveness',
    tags: ['ops'],
    response: { 200: z.object({ status: z.literal('ok') }) },
    handler: async () => ({ status: 'ok' as const }),
  });

  const Ready = z.object({
    ready: z.boolean(),
    /** False after a storage fault (disk full, read-only, locked, corrupt) until a write succeeds. */
    writable: z.boolean(),
    live: z.boolean(),
    position: z.number().int(),
    head: z.number().int(),
    lag: z.number().int(),
    maxLag: z.number().int(),
    chain: z
      .object({ ok: z.boolean(), code: z.literal('CHAIN_BROKEN').optional(), since: z.string().optional() })
      .optional(),
  });
  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/readyz',
    roles: rolesFor('GET /readyz'),
    summary:
      "Readiness: the projector is live and within the allowed lag of the store head, and the store's hash chain still matches",
    tags: ['ops'],
    response: { 200: Ready, 503: Ready },
    handler: async ({ reply }) => {
      let head = 0;
      try {
        head = await ctx.store.headPosition();
      } catch {
        head = Number.MAX_SAFE_INTEGER;
      }
      const lag = Math.max(0, head - ctx.projector.position);
      const chain = ctx.integrity?.();
      // After a storage fault, not ready until a write succeeds again (a probe write is tried here).
      const writable =
        ctx.store.health?.().writable === false ? ((await ctx.store.probeWrite?.()) ?? false) : true;
      const ready = ctx.projector.live && lag <= ctx.readyLag && chain?.ok !== false && writable;
      reply.status(ready ? 200 : 503);
      return {
        ready,
        writable,
        live: ctx.projector.live,
        position: ctx.projector.position,
        head: Math.min(head, Number.MAX_SAFE_INTEGER),
        lag,
        maxLag: ctx.readyLag,
        ...(chain
          ? {
              chain: {
                ok: chain.ok,
                ...(chain.code ? { code: chain.code } : {}),
                ...(chain.since ? { since: chain.since } : {}),
              },
            }
          : {}),
      };
    },
  });

  await registerDocs(app);
};
