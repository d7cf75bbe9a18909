import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRINCIPALS, type PrincipalName, type TestEnv, testEnv } from '../../test/support/api-env.ts';
import { detection } from '../../test/support/projector-kit.ts';
import type { Role } from './auth.ts';
import { ROUTE_ROLES } from './roles.ts';

/**
 * The authorization matrix: every principal × every endpoint, over real HTTP. Each principal gets
 * its own environment (same scripted history) so that each mutating call meets the same state.
 */

interface Endpoint {
  key: keyof typeof ROUTE_ROLES;
  url: string;
  body?: unknown;
  /** Status of an allowed call. */
  ok: number;
  sse?: boolean;
}

const DAVE = { provider: 'okta', id: 'dave', type: 'human' as const };

const ENDPOINTS: Endpoint[] = [
  { key: 'POST /v1/detections', url: '/v1/detections', body: detection('d-matrix', DAVE), ok: 202 },
  { key: 'GET /v1/cases', url: '/v1/cases', ok: 200 },
  { key: 'GET /v1/cases/:id', url: '/v1/cases/case-alice-1', ok: 200 },
  { key: 'GET /v1/identities/:provider/:id', url: '/v1/identities/okta/alice%40example.com', ok: 200 },
  { key: 'GET /v1/actions', url: '/v1/actions?status=proposed', ok: 200 },
  { key: 'GET /v1/actions/:id', url: '/v1/actions/act-alice-1-1', ok: 200 },
  { key: 'POST /v1/actions/:id/approve', url: '/v1/actions/act-ci-1-1/approve', body: {}, ok: 200 },
  {
    key: 'POST /v1/actions/:id/reject',
    url: '/v1/actions/act-ci-1-2/reject',
    body: { reason: 'false positive' },
    ok: 200,
  },
  {
    key: 'POST /v1/cases/:id/verdict',
    url: '/v1/cases/case-carol-1/verdict',
    body: { verdict: 'malicious' },
    ok: 200,
  },
  {
    key: 'POST /v1/actions',
    url: '/v1/actions',
    body: { identity: DAVE, action: 'revoke_sessions', reason: 'phishing report' },
    ok: 201,
  },
  { key: 'GET /v1/automation', url: '/v1/automation', ok: 200 },
  { key: 'POST /v1/automation/pause', url: '/v1/automation/pause', body: { reason: 'drill' }, ok: 200 },
  {
    key: 'POST /v1/automation/resume',
    url: '/v1/automation/resume',
    body: { reason: 'drill over' },
    ok: 200,
  },
  { key: 'GET /v1/actions/:id/explain', url: '/v1/actions/act-alice-1-1/explain', ok: 200 },
  { key: 'GET /v1/approval-groups', url: '/v1/approval-groups', ok: 200 },
  {
    // No such group: the matrix checks who may ask (a forbidden principal never learns it is missing).
    key: 'POST /v1/approval-groups/:groupId/decision',
    url: '/v1/approval-groups/storm:none/decision',
    body: { decision: 'approve' },
    ok: 404,
  },
  {
    key: 'POST /v1/storms/:stormId/resolve',
    url: '/v1/storms/storm-none/resolve',
    body: {},
    ok: 404,
  },
  { key: 'GET /v1/audit/events', url: '/v1/audit/events?case=case-alice-1', ok: 200 },
  { key: 'GET /v1/audit/export', url: '/v1/audit/export?format=csv', ok: 200 },
  { key: 'GET /v1/audit/verify', url: '/v1/audit/verify', ok: 200 },
  {
    // No such record: the matrix checks who may ask.
    key: 'GET /v1/audit/raw-records/:sha256',
    url: `/v1/audit/raw-records/${'0'.repeat(64)}`,
    ok: 404,
  },
  { key: 'GET /v1/stream', url: '/v1/stream?after=0', ok: 200, sse: true },
  { key: 'GET /v1/signals', url: '/v1/signals', ok: 200 },
  { key: 'GET /v1/signals/jwks', url: '/v1/signals/jwks', ok: 200 },
  { key: 'GET /.well-known/ssf-configuration', url: '/.well-known/ssf-configuration', ok: 200 },
  { key: 'GET /metrics', url: '/metrics', ok: 200 },
  { key: 'GET /healthz', url: '/healthz', ok: 200 },
  { key: 'GET /readyz', url: '/readyz', ok: 200 },
  { key: 'GET /docs', url: '/docs', ok: 200 },
  { key: 'GET /docs/json', url: '/docs/json', ok: 200 },
  // authenticated by Slack's signature, not by a credential; not configured in this environment
  { key: 'POST /v1/chat/slack/interactions', url: '/v1/chat/slack/interactions', ok: 404 },
  { key: 'GET /v1/chat/refusals', url: '/v1/chat/refusals', ok: 200 },
];

const ROLE_OF: Partial<Record<PrincipalName, Role>> = {
  service: 'service',
  auditor: 'auditor',
  analyst: 'analyst',
  admin: 'admin',
};

function expected(e: Endpoint, who: PrincipalName): number {
  const roles = ROUTE_ROLES[e.key]!;
  if (roles === 'public') return e.ok;
  const role = ROLE_OF[who];
  if (!role) return 401; // none, bad signature, expired
  return roles.includes(role) ? e.ok : 403;
}

describe('authorization matrix: every principal × every endpoint', () => {
  const envs = new Map<string, { env: TestEnv; base: string }>();

  beforeAll(async () => {
    for (const who of PRINCIPALS) {
      const env = await testEnv();
      const base = await env.app.listen({ port: 0, host: '127.0.0.1' });
      envs.set(who, { env, base });
    }
  });
  afterAll(async () => {
    for (const { env } of envs.values()) await env.close();
  });

  it('covers every route the server declares (and only those)', async () => {
    expect(ENDPOINTS.map((e) => e.key).sort()).toEqual(Object.keys(ROUTE_ROLES).sort());
    const { env } = envs.get('admin')!;
    const doc = env.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    const declared = Object.keys(ROUTE_ROLES).filter((k) => !k.includes('/docs'));
    expect(documented.sort()).toEqual(declared.sort());
  });

  const table = ENDPOINTS.flatMap((e) => PRINCIPALS.map((who) => ({ e, who, status: expected(e, who) })));

  it.each(table)('$e.key as $who → $status', async ({ e, who, status }) => {
    const { env, base } = envs.get(who)!;
    const headBefore = await env.store.headPosition();
    const method = e.key.split(' ')[0]!;
    const ctrl = new AbortController();
    const res = await fetch(`${base}${e.url}`, {
      method,
      headers: {
        ...env.headers[who],
        ...(e.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(e.body !== undefined ? { body: JSON.stringify(e.body) } : {}),
      signal: ctrl.signal,
    });
    expect(res.status).toBe(status);
    if (e.sse && res.status === 200) {
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain('live feed');
      ctrl.abort();
      await reader.cancel().catch(() => undefined);
      return;
    }
    const text = await res.text();
    if (status === 401 || status === 403) {
      const body = JSON.parse(text) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN');
      if (status === 401) expect(res.headers.get('www-authenticate')).toContain('Bearer');
      if (who === 'expired') expect(body.error.message).toBe('token expired');
      // a denied request writes nothing
      expect(await env.store.headPosition()).toBe(headBefore);
    }
  });
});
