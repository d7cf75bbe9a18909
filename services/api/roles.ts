import type { Principal, Role } from './auth.ts';

const READ: readonly Role[] = ['analyst', 'auditor', 'admin'];
export const DECIDE: readonly Role[] = ['analyst', 'admin'];
const AUDIT: readonly Role[] = ['auditor', 'admin'];
const INGEST: readonly Role[] = ['service', 'admin'];
const ADMIN: readonly Role[] = ['admin'];

/**
 * Who may call what: the one route→role table of the API (services/api/authz.int.test.ts checks
 * every cell, and that every served route is here). A new route adds its line here and takes its
 * roles with `rolesFor`.
 */
export const ROUTE_ROLES: Record<string, readonly Role[] | 'public'> = {
  'POST /v1/detections': INGEST,
  'GET /v1/cases': READ,
  'GET /v1/cases/:id': READ,
  'GET /v1/identities/:provider/:id': READ,
  'GET /v1/actions': READ,
  'GET /v1/actions/:id': READ,
  'POST /v1/actions/:id/approve': DECIDE,
  'POST /v1/actions/:id/reject': DECIDE,
  'POST /v1/cases/:id/verdict': DECIDE,
  'POST /v1/actions': DECIDE,
  'GET /v1/automation': READ,
  'POST /v1/automation/pause': ADMIN,
  'POST /v1/automation/resume': ADMIN,
  'GET /v1/actions/:id/explain': READ,
  'GET /v1/approval-groups': READ,
  'POST /v1/approval-groups/:groupId/decision': DECIDE,
  'POST /v1/storms/:stormId/resolve': DECIDE,
  'GET /v1/audit/events': READ,
  'GET /v1/audit/export': AUDIT,
  'GET /v1/audit/verify': AUDIT,
  'GET /v1/audit/raw-records/:sha256': READ,
  'GET /v1/stream': READ,
  'GET /v1/signals': READ,
  'GET /v1/signals/jwks': 'public',
  'GET /.well-known/ssf-configuration': 'public',
  'GET /metrics': READ,
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /docs': 'public',
  'GET /docs/json': 'public',
  // authenticated by Slack's request signature, not by a Tourniquet credential
  'POST /v1/chat/slack/interactions': 'public',
  'GET /v1/chat/refusals': AUDIT,
};

/** The roles of `METHOD /path` from ROUTE_ROLES; a route missing from the table fails at startup. */
export function rolesFor(key: string): readonly Role[] | 'public' {
  const r = ROUTE_ROLES[key];
  if (!r) throw new Error(`no roles declared for ${key} in ROUTE_ROLES (services/api/roles.ts)`);
  return r;
}

/** The acting role recorded with a human command: the most specific one that allows the route. */
export function actingRole(p: Principal, allowed: readonly Role[]): Role {
  return (
    (['analyst', 'auditor', 'service', 'admin'] as const).find(
      (r) => p.roles.includes(r) && allowed.includes(r),
    ) ?? p.roles[0]!
  );
}
