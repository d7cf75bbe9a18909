/**
 * Test support: a real Keycloak for integration tests.
 *
 * startKeycloak() uses KEYCLOAK_URL when set (admin credentials from KEYCLOAK_ADMIN_USER/PASSWORD, default
 * admin/admin); otherwise it runs `scripts/keycloak.sh up` (idempotent: reuses this run's server) with an
 * owner token (TQ_OWNER). The script records the token only when it starts the server, so the handle
 * knows whether it is the owner, and stopKeycloak() asks `down` to stop only the token's own server:
 * one owner per server per run, whatever order test files start and stop in.
 * startPrivateKeycloak() is a Keycloak of the caller's own (own run directory, own copy of the
 * distribution, free ports), for tests that suspend or stop Keycloak while shared servers keep serving.
 * createTestRealm() builds an isolated realm: a user with a password, a public client with direct access
 * grants (password grant, refresh and offline tokens), a confidential client with a service account,
 * a realm role and a group held by both the user and the service account.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
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
  /** The token this handle passed as TQ_OWNER (stopKeycloak stops only a server recorded with it). */
  owner?: string;
  /** The environment the script ran with (TOURNIQUET_RUN, ports) for this server. */
  env?: NodeJS.ProcessEnv;
  /** The run directory's pid file (the JVM leads its own process group). */
  pidFile?: string;
}

const runRoot = (env: NodeJS.ProcessEnv) => env.TOURNIQUET_RUN ?? '/tmp/tourniquet-infra';
const ownerToken = () => `test-${process.pid}-${randomBytes(4).toString('hex')}`;

/** Who `up` recorded as the owner of the run's Keycloak, if anyone. */
function recordedOwner(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return readFileSync(join(runRoot(env), 'keycloak.owner'), 'utf8').trim();
  } catch {
    return undefined;
  }
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

function adminCredentials(): KeycloakHandle['admin'] {
  return {
    realm: 'master',
    clientId: 'admin-cli',
    username: process.env.KEYCLOAK_ADMIN_USER ?? 'admin',
    password: process.env.KEYCLOAK_ADMIN_PASSWORD ?? 'admin',
  };
}

async function scriptUp(env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<KeycloakHandle> {
  const owner = ownerToken();
  const withOwner = { ...env, TQ_OWNER: owner };
  try {
    const { stdout } = await run('bash', [SCRIPT, 'up'], {
      timeout: timeoutMs,
      maxBuffer: 10 * 1024 * 1024,
      env: withOwner,
    });
    const url = stdout.trim().split('\n').pop() ?? '';
    return {
      baseUrl: url,
      admin: adminCredentials(),
      startedHere: recordedOwner(env) === owner,
      owner,
      env: withOwner,
      pidFile: join(runRoot(env), 'keycloak', 'keycloak.pid'),
    };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/keycloak.sh up failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

export async function startKeycloak(): Promise<KeycloakHandle> {
  if (process.env.KEYCLOAK_URL) {
    return {
      baseUrl: process.env.KEYCLOAK_URL.replace(/\/+$/, ''),
      admin: adminCredentials(),
      startedHere: false,
    };
  }
  return scriptUp(process.env);
}

/**
 * Stops Keycloak if this handle started it (KEYCLOAK_KEEP=1 leaves it running for the next run). The
 * script checks the owner too: a handle can never stop, or pull the run directory from under, a server
 * another test started.
 */
export async function stopKeycloak(h: KeycloakHandle | undefined): Promise<void> {
  if (!h?.startedHere || process.env.KEYCLOAK_KEEP === '1') return;
  await run('bash', [SCRIPT, 'down'], { timeout: 120_000, env: h.env ?? process.env });
}

function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePromise(port));
    });
  });
}

export interface PrivateKeycloak extends KeycloakHandle {
  runDir: string;
  pidFile: string;
  /** Stops it (owner-checked `down`) and removes its run directory once nothing uses it. */
  down(): Promise<void>;
}

/**
 * A Keycloak of the caller's own: its own TOURNIQUET_RUN, free ports, and its own copy of the unpacked
 * distribution when the shared cache has one (so nothing it does touches the shared server's files).
 * Costs a cold start (20-70 s on an idle 2-core machine, several minutes under load).
 */
export async function startPrivateKeycloak(): Promise<PrivateKeycloak> {
  const runDir = mkdtempSync(join(tmpdir(), 'tq-private-keycloak-'));
  const version = process.env.KEYCLOAK_VERSION ?? '26.7.3';
  const sharedCache = process.env.TOURNIQUET_CACHE ?? join(homedir(), '.cache', 'tourniquet');
  const dist = join(sharedCache, `keycloak-${version}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TOURNIQUET_RUN: runDir,
    KEYCLOAK_PORT: String(await freePort()),
    KEYCLOAK_MGMT_PORT: String(await freePort()),
    // a cold start-dev builds the server first: minutes on a loaded 2-core machine
    KEYCLOAK_START_TIMEOUT: process.env.KEYCLOAK_START_TIMEOUT ?? '600',
  };
  if (existsSync(join(dist, '.tourniquet-complete'))) {
    const cache = join(runDir, 'cache');
    cpSync(dist, join(cache, `keycloak-${version}`), { recursive: true });
    env.TOURNIQUET_CACHE = cache;
  }
  const h = await scriptUp(env, 700_000);
  if (!h.startedHere)
    throw new Error(`private Keycloak in ${runDir}: the script did not record this test as its owner`);
  return {
    ...h,
    runDir,
    pidFile: join(runDir, 'keycloak', 'keycloak.pid'),
    async down() {
      await run('bash', [SCRIPT, 'down'], { timeout: 120_000, env: h.env ?? env });
      // the script removed the run data once the server was gone; the copy of the dist goes too
      rmSync(runDir, { recursive: true, force: true });
    },
  };
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
