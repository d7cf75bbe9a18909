/**
 * Microsoft Graph v1.0 as far as the Entra ID adapter uses it, in memory and checked against Graph's
 * published description (test/fixtures/vendors/entra/operations.json), plus a client-credentials token
 * endpoint: users (enabled, sign-in sessions valid from, last password change, risk), service principals
 * with their client secrets and certificates, and password resets as long-running operations (202 +
 * Location, running on the first poll, succeeded on the next).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { type FakeReply, type FakeRequest, VendorFake } from './vendor-fake.ts';

const CODES: Record<number, string> = {
  400: 'BadRequest',
  401: 'InvalidAuthenticationToken',
  403: 'Authorization_RequestDenied',
  404: 'Request_ResourceNotFound',
  409: 'Request_MultipleObjectsWithSameKeyValue',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
};

function graphError(status: number, message: string): unknown {
  return {
    error: {
      code: CODES[status] ?? 'UnknownError',
      message,
      innerError: {
        date: new Date().toISOString(),
        'request-id': randomUUID(),
        'client-request-id': randomUUID(),
      },
    },
  };
}

export interface FakeEntraUser {
  id: string;
  upn: string;
  accountEnabled: boolean;
  signInSessionsValidFrom: string;
  lastPasswordChange: string;
  risk: 'none' | 'high' | 'dismissed';
}
export interface FakeEntraSp {
  id: string;
  appId: string;
  displayName: string;
  accountEnabled: boolean;
  passwordCredentials: Array<{ keyId: string; displayName: string }>;
  keyCredentials: Array<{ keyId: string; displayName: string }>;
}

const LONG_AGO = '2026-01-01T00:00:00Z';

export class EntraFake {
  readonly fake: VendorFake;
  readonly clientId = randomUUID();
  readonly clientSecret = randomBytes(16).toString('hex');
  readonly users = new Map<string, FakeEntraUser>();
  readonly sps = new Map<string, FakeEntraSp>();
  /** The userIds of each riskyUsers call, in order. */
  readonly riskCalls: Array<{ op: string; userIds: string[] }> = [];
  private readonly tokens = new Set<string>();
  private readonly operations = new Map<string, { userId: string; polls: number }>();
  origin = '';

  constructor() {
    this.fake = new VendorFake({
      vendor: 'entra',
      basePath: '/v1.0',
      errorBody: graphError,
      authenticate: (req) =>
        this.tokens.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))
          ? null
          : { status: 401, body: graphError(401, 'Access token validation failure.') },
      handlers: this.handlers(),
      raw: { 'POST /tenant/oauth2/v2.0/token': (r) => this.issueToken(r.rawBody) },
    });
  }

  async start(): Promise<string> {
    const url = await this.fake.start();
    this.origin = new URL(url).origin;
    return url;
  }
  stop(): Promise<void> {
    return this.fake.stop();
  }
  get tokenUrl(): string {
    return `${this.origin}/tenant/oauth2/v2.0/token`;
  }

  private issueToken(body: string): FakeReply {
    const f = new URLSearchParams(body);
    if (
      f.get('grant_type') !== 'client_credentials' ||
      f.get('scope') !== 'https://graph.microsoft.com/.default'
    )
      return {
        status: 400,
        body: { error: 'invalid_request', error_description: 'AADSTS900144: grant_type or scope' },
      };
    if (f.get('client_id') !== this.clientId || f.get('client_secret') !== this.clientSecret)
      return {
        status: 401,
        body: {
          error: 'invalid_client',
          error_description: 'AADSTS7000215: Invalid client secret provided.',
        },
      };
    const t = randomBytes(24).toString('base64url');
    this.tokens.add(t);
    return {
      status: 200,
      body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: t },
    };
  }

  addUser(upn: string): FakeEntraUser {
    const u: FakeEntraUser = {
      id: randomUUID(),
      upn,
      accountEnabled: true,
      signInSessionsValidFrom: LONG_AGO,
      lastPasswordChange: LONG_AGO,
      risk: 'none',
    };
    this.users.set(u.id, u);
    return u;
  }

  addSp(displayName: string, secrets = 1): FakeEntraSp {
    const sp: FakeEntraSp = {
      id: randomUUID(),
      appId: randomUUID(),
      displayName,
      accountEnabled: true,
      passwordCredentials: Array.from({ length: secrets }, (_, i) => ({
        keyId: randomUUID(),
        displayName: `secret ${i + 1}`,
      })),
      keyCredentials: [{ keyId: randomUUID(), displayName: 'CN=deploy' }],
    };
    this.sps.set(sp.id, sp);
    return sp;
  }

  private user(key: string | undefined): FakeEntraUser | undefined {
    return key === undefined
      ? undefined
      : (this.users.get(key) ??
          [...this.users.values()].find((u) => u.upn.toLowerCase() === key.toLowerCase()));
  }

  private userJson(u: FakeEntraUser, select: string | null): Record<string, unknown> {
    const all: Record<string, unknown> = {
      id: u.id,
      userPrincipalName: u.upn,
      accountEnabled: u.accountEnabled,
      signInSessionsValidFromDateTime: u.signInSessionsValidFrom,
      lastPasswordChangeDateTime: u.lastPasswordChange,
      displayName: u.upn.split('@')[0],
      mail: u.upn,
    };
    return select ? Object.fromEntries(select.split(',').map((k) => [k, all[k] ?? null])) : all;
  }

  private spJson(sp: FakeEntraSp, select: string | null): Record<string, unknown> {
    const all: Record<string, unknown> = {
      id: sp.id,
      appId: sp.appId,
      displayName: sp.displayName,
      accountEnabled: sp.accountEnabled,
      passwordCredentials: sp.passwordCredentials.map((c) => ({
        ...c,
        hint: 'abc',
        secretText: null,
        customKeyIdentifier: null,
        startDateTime: LONG_AGO,
        endDateTime: '2027-12-31T00:00:00Z',
      })),
      keyCredentials: sp.keyCredentials.map((c) => ({
        ...c,
        type: 'AsymmetricX509Cert',
        usage: 'Verify',
        startDateTime: LONG_AGO,
        endDateTime: '2027-12-31T00:00:00Z',
      })),
    };
    return select ? Object.fromEntries(select.split(',').map((k) => [k, all[k] ?? null])) : all;
  }

  private handlers(): Record<string, (r: FakeRequest) => FakeReply> {
    const nf = (id: string) => ({
      status: 404,
      body: graphError(
        404,
        `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
      ),
    });
    const withUser = (fn: (u: FakeEntraUser, r: FakeRequest) => FakeReply) => (r: FakeRequest) => {
      const u = this.user(r.params.id);
      return u ? fn(u, r) : nf(r.params.id ?? '');
    };
    const withSp = (fn: (sp: FakeEntraSp, r: FakeRequest) => FakeReply) => (r: FakeRequest) => {
      const sp = this.sps.get(r.params.id ?? '');
      return sp ? fn(sp, r) : nf(r.params.id ?? '');
    };
    const risk = (level: 'high' | 'dismissed', op: string) => (r: FakeRequest) => {
      const ids = (r.body as { userIds?: string[] }).userIds ?? [];
      this.riskCalls.push({ op, userIds: ids });
      for (const id of ids) {
        const u = this.users.get(id);
        if (u) u.risk = level;
      }
      return { status: 204 };
    };
    return {
      'user.get': withUser((u, r) => ({ status: 200, body: this.userJson(u, r.query.get('$select')) })),
      'user.update': withUser((u, r) => {
        const b = r.body as { accountEnabled?: boolean };
        if (typeof b.accountEnabled === 'boolean') u.accountEnabled = b.accountEnabled;
        return { status: 204 };
      }),
      'user.revokeSignInSessions': withUser((u) => {
        u.signInSessionsValidFrom = new Date().toISOString();
        return {
          status: 200,
          body: { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean', value: true },
        };
      }),
      'authenticationMethod.resetPassword': withUser((u, r) => {
        if (r.params.methodId !== '28c10230-6103-485e-b985-444c60001490') return nf(r.params.methodId ?? '');
        const opId = randomUUID();
        this.operations.set(opId, { userId: u.id, polls: 0 });
        return {
          status: 202,
          headers: {
            location: `${this.origin}/v1.0/users/${u.id}/authentication/operations/${opId}`,
            'retry-after': '1',
          },
        };
      }),
      'authentication.operations.get': withUser((u, r) => {
        const op = this.operations.get(r.params.operationId ?? '');
        if (!op || op.userId !== u.id) return nf(r.params.operationId ?? '');
        op.polls++;
        const done = op.polls >= 2;
        if (done && op.polls === 2) u.lastPasswordChange = new Date().toISOString();
        return {
          status: 200,
          body: {
            id: r.params.operationId,
            createdDateTime: new Date().toISOString(),
            lastActionDateTime: new Date().toISOString(),
            status: done ? 'succeeded' : 'running',
            statusDetail: null,
            resourceLocation: null,
          },
        };
      }),
      'servicePrincipal.list': (r) => {
        const m = /^appId eq '([^']+)'$/.exec(r.query.get('$filter') ?? '');
        const list = [...this.sps.values()].filter((sp) => !m || sp.appId === m[1]);
        return { status: 200, body: { value: list.map((sp) => this.spJson(sp, r.query.get('$select'))) } };
      },
      'servicePrincipal.get': withSp((sp, r) => ({
        status: 200,
        body: this.spJson(sp, r.query.get('$select')),
      })),
      'servicePrincipal.update': withSp((sp, r) => {
        const b = r.body as { accountEnabled?: boolean };
        if (typeof b.accountEnabled === 'boolean') sp.accountEnabled = b.accountEnabled;
        return { status: 204 };
      }),
      'servicePrincipal.removePassword': withSp((sp, r) => {
        const keyId = (r.body as { keyId: string }).keyId;
        const before = sp.passwordCredentials.length;
        sp.passwordCredentials = sp.passwordCredentials.filter((c) => c.keyId !== keyId);
        return sp.passwordCredentials.length < before
          ? { status: 204 }
          : { status: 400, body: graphError(400, `No password credential found with keyId ${keyId}`) };
      }),
      'servicePrincipal.removeKey': withSp((sp, r) => {
        const keyId = (r.body as { keyId: string }).keyId;
        sp.keyCredentials = sp.keyCredentials.filter((c) => c.keyId !== keyId);
        return { status: 204 };
      }),
      'riskyUser.confirmCompromised': risk('high', 'confirmCompromised'),
      'riskyUser.dismiss': risk('dismissed', 'dismiss'),
    };
  }
}
