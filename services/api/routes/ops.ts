import { z } from 'zod';
import { metrics } from '../../../platform/metrics.ts';
import type { ApiRoutes } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** Operations: metrics, liveness, readiness and the API documentation. */
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

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/docs/json',
    roles: rolesFor('GET /docs/json'),
    summary: 'OpenAPI document',
    tags: ['ops'],
    hide: true,
    response: { 200: { type: 'object', additionalProperties: true } },
    handler: async () => app.swagger(),
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/docs',
    roles: rolesFor('GET /docs'),
    summary: 'API documentation',
    tags: ['ops'],
    hide: true,
    produces: 'text/html',
    response: { 200: { type: 'string' } },
    handler: async ({ reply }) => {
      const doc = app.swagger() as {
        paths?: Record<string, Record<string, { summary?: string; description?: string }>>;
      };
      const rows: string[] = [];
      for (const [path, ops] of Object.entries(doc.paths ?? {})) {
        for (const [method, op] of Object.entries(ops)) {
          rows.push(
            `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(op.summary ?? '')}<br><small>${escapeHtml(op.description ?? '').replace(/\n/g, '<br>')}</small></td></tr>`,
          );
        }
      }
      reply.header('content-type', 'text/html; charset=utf-8');
      return reply.send(
        `<!doctype html><html><head><meta charset="utf-8"><title>Tourniquet API</title><style>body{font-family:system-ui,sans-serif;margin:2rem}td{vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #ddd}</style></head><body><h1>Tourniquet API</h1><p>OpenAPI 3 document: <a href="/docs/json">/docs/json</a>. Authenticate with <code>Authorization: Bearer &lt;jwt&gt;</code> or <code>X-API-Key</code>.</p><table>${rows.join('')}</table></body></html>`,
      );
    },
  });
};
