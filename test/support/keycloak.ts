/**
 * Test support: a real Keycloak for integration tests.
 *
 * startKeycloak() uses KEYCLOAK_URL when set (admin credentials from KEYCLOAK_ADMIN_USER/PASSWORD, default
 * admin/admin); otherwise it runs `scripts/keycloak.sh up` (idempotent: reuses a running server) and
 * remembers whether this process started it, so stopKeycloak() only stops what it started.
 * createTestRealm() builds an isolated realm: a user with a password, a public client with direct access
 * grants (password grant, refresh and offline tokens), a confidential client with a service account,
 * a realm role and a group held by both the user and the service account.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = join(ROOT, 'scripts/keycloak.sh');

export interface KeycloakHandle {
  baseUrl: string;
  admin: { realm: string; clientId: string; username: string; password: string };
  startedHere: boolean;
}

/** Why Keycloak cannot run here, or null when it can (KEYCLOAK_URL set, or a JDK found). */
export function keycloakUnavailableReason(): string | null {
  if (process.env.KEYCLOAK_URL) return null;
  const jvms = existsSync('/usr/lib/jvm') ? readdirSync('/usr/lib/jvm') : [];
  if (jvms.some((d) => existsSync(join('/usr/lib/jvm', d, 'bin/java')))) return null;
  if (process.env.JAVA_HOME && existsSync(join(process.env.JAVA_HOME, 'bin/java'))) return null;
  const onPath = (process.env.PATH ?? '').split(':').some((p) => p && existsSync(join(p, 'java')));
  if (onPath) return null;
  return 'no Java runtime (JDK 17/21/25) found and KEYCLOAK_URL is not set: Keycloak cannot be started';
}

export async function startKeycloak(): Promise<KeycloakHandle> {
  const admin = {
    realm: 'master',
    clientId: 'admin-cli',
    username: process.env.KEYCLOAK_ADMIN_USER ?? 'admin',
    password: process.env.KEYCLOAK_ADMIN_PASSWORD ?? 'admin',
  };
  if (process.env.KEYCLOAK_URL) {
    return { baseUrl: process.env.KEYCLOAK_URL.replace(/\/+$/, ''), admin, startedHere: false };
  }
  let startedHere = false;
  try {
    await run('bash', [SCRIPT, 'status'], { timeout: 30_000 });
  } catch {
    startedHere = true;
  }
  try {
    const { stdout } = await run('bash', [SCRIPT, 'up'], { timeout: 300_000, maxBuffer: 10 * 1024 * 1024 });
    const url = stdout.trim().split('\n').pop() ?? '';
    return { baseUrl: url, admin, startedHere };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/keycloak.sh up failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

/** Stops Keycloak if this process started it (KEYCLOAK_KEEP=1 leaves it running for the next run). */
export async function stopKeycloak(h: KeycloakHandle | undefined): Promise<void> {
  if (!h?.startedHere || process.env.KEYCLOAK_KEEP === '1') return;
  await run('bash', [SCRIPT, 'down'], { timeout: 60_000 });
}

export interface TokenReply {
  status: number;
  body: Record<string, unknown>;
}

/** A realm fixture plus helpers that speak to Keycloak as real clients and as the admin. */
export interface TestRealm {
  baseUrl: string;
  realm: string;
  user: { id: string; username: string; password: string };
  /** Public client with direct access grants (password grant). */
  app: { id: string; clientId: string };
  /** Confidential client with a service account. */
  service: { id: string; clientId: string; secret: string; saUserId: string };
  role: string;
  group: { id: string; name: string; path: string };
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  password(opts?: { offline?: boolean; username?: string; password?: string }): Promise<TokenReply>;
  refresh(refreshToken: string, clientId?: string): Promise<TokenReply>;
  clientCredentials(clientId: string, secret: string): Promise<TokenReply>;
  introspect(token: string, clientId: string, secret: string): Promise<TokenReply>;
  /** Status of the userinfo endpoint for an access token: 200 while Keycloak still honours it. */
  userinfo(accessToken: string): Promise<number>;
  currentSecret(): Promise<string>;
  cleanup(): Promise<void>;
}

async function adminToken(h: KeycloakHandle): Promise<string> {
  const res = await fetch(`${h.baseUrl}/realms/${h.admin.realm}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: h.admin.clientId,
      username: h.admin.username,
      password: h.admin.password,
    }),
  });
  if (!res.ok) throw new Error(`admin token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export async function createTestRealm(h: KeycloakHandle, prefix = 'tq'): Promise<TestRealm> {
  const realm = `${prefix}-${randomBytes(4).toString('hex')}`;
  let token = await adminToken(h);
  let tokenAt = Date.now();

  const admin = async <T = unknown>(method: string, path: string, body?: unknown): Promise<T> => {
    if (Date.now() - tokenAt > 30_000) {
      token = await adminToken(h);
      tokenAt = Date.now();
    }
    const res = await fetch(`${h.baseUrl}/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    const location = res.headers.get('location');
    if (text === '' && location) return location.split('/').pop() as T;
    return (text === '' ? undefined : JSON.parse(text)) as T;
  };
  const tokenCall = async (form: Record<string, string>, path = 'token'): Promise<TokenReply> => {
    const res = await fetch(`${h.baseUrl}/realms/${realm}/protocol/openid-connect/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  await admin('POST', '/realms', { realm, enabled: true });
  const r = `/realms/${realm}`;
  const username = 'alice';
  const password = 'correct-horse-battery';
  const userId = await admin<string>('POST', `${r}/users`, {
    username,
    enabled: true,
    email: 'alice@example.test',
    emailVerified: true,
    firstName: 'Alice',
    lastName: 'Example',
    credentials: [{ type: 'password', value: password, temporary: false }],
  });
  const appId = await admin<string>('POST', `${r}/clients`, {
    clientId: 'tq-app',
    publicClient: true,
    directAccessGrantsEnabled: true,
    standardFlowEnabled: false,
  });
  const secret = randomBytes(16).toString('hex');
  const svcId = await admin<string>('POST', `${r}/clients`, {
    clientId: 'tq-svc',
    publicClient: false,
    secret,
    serviceAccountsEnabled: true,
    standardFlowEnabled: false,
    directAccessGrantsEnabled: false,
  });
  const sa = await admin<{ id: string }>('GET', `${r}/clients/${svcId}/service-account-user`);
  const role = 'tq-operator';
  await admin('POST', `${r}/roles`, { name: role });
  const roleRep = await admin<Record<string, unknown>>('GET', `${r}/roles/${role}`);
  await admin('POST', `${r}/users/${userId}/role-mappings/realm`, [roleRep]);
  await admin('POST', `${r}/users/${sa.id}/role-mappings/realm`, [roleRep]);
  const groupId = await admin<string>('POST', `${r}/groups`, { name: 'tq-admins' });
  await admin('PUT', `${r}/users/${userId}/groups/${groupId}`);
  await admin('PUT', `${r}/users/${sa.id}/groups/${groupId}`);

  return {
    baseUrl: h.baseUrl,
    realm,
    user: { id: userId, username, password },
    app: { id: appId, clientId: 'tq-app' },
    service: { id: svcId, clientId: 'tq-svc', secret, saUserId: sa.id },
    role,
    group: { id: groupId, name: 'tq-admins', path: '/tq-admins' },
    admin,
    password: (opts = {}) =>
      tokenCall({
        grant_type: 'password',
        client_id: 'tq-app',
        username: opts.username ?? username,
        password: opts.password ?? password,
        ...(opts.offline ? { scope: 'openid offline_access' } : { scope: 'openid' }),
      }),
    refresh: (refreshToken, clientId = 'tq-app') =>
      tokenCall({ grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken }),
    clientCredentials: (clientId, clientSecret) =>
      tokenCall({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
        scope: 'openid',
      }),
    userinfo: async (accessToken) => {
      const res = await fetch(`${h.baseUrl}/realms/${realm}/protocol/openid-connect/userinfo`, {
        headers: { authorization: `Bearer ${accessToken}` },
      });
      await res.arrayBuffer();
      return res.status;
    },
    introspect: (t, clientId, clientSecret) =>
      tokenCall({ token: t, client_id: clientId, client_secret: clientSecret }, 'token/introspect'),
    currentSecret: async () =>
      (await admin<{ value: string }>('GET', `${r}/clients/${svcId}/client-secret`)).value,
    cleanup: async () => {
      await admin('DELETE', r).catch(() => undefined);
    },
  };
}

/** Decodes a JWT's payload without verifying it (tests only read claims Keycloak just issued). */
export function jwtClaims(jwt: string): Record<string, unknown> {
  const part = jwt.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}
