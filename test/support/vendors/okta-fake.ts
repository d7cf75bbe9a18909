/**
 * Okta's Management API (and Global Token Revocation) as far as the Okta adapter uses it, in memory and
 * checked against Okta's published description (test/fixtures/vendors/okta/operations.json): users with
 * their status, sessions, enrolled factors, per-app refresh tokens and consent grants, user risk, and a
 * System Log that records what happened (user.session.clear, user.lifecycle.suspend, …).
 */
import { randomBytes } from 'node:crypto';
import { type FakeReply, type FakeRequest, VendorFake } from './vendor-fake.ts';

const CODES: Record<number, [string, string]> = {
  400: ['E0000001', 'Api validation failed'],
  401: ['E0000011', 'Invalid token provided'],
  403: ['E0000006', 'You do not have permission to perform the requested action'],
  404: ['E0000007', 'Not found: Resource not found'],
  409: ['E0000038', 'This operation is not allowed in the current state'],
  429: ['E0000047', 'API call exceeded rate limit due to too many requests.'],
  500: ['E0000009', 'Internal Server Error'],
  502: ['E0000009', 'Internal Server Error'],
  503: ['E0000010', 'Service is in read only mode'],
};

function oktaError(status: number, message: string): unknown {
  const [code, summary] = CODES[status] ?? ['E0000009', 'Internal Server Error'];
  return {
    errorCode: code,
    errorSummary: status === 400 || status === 404 ? `${summary}: ${message}` : summary,
    errorLink: code,
    errorId: `oae${randomBytes(8).toString('hex')}`,
    errorCauses: status === 400 ? [{ errorSummary: message }] : [],
  };
}

interface OktaTokenish {
  id: string;
  status: 'ACTIVE' | 'REVOKED';
}
export interface FakeOktaUser {
  id: string;
  login: string;
  status: string;
  sessions: number;
  factors: Array<{ id: string; factorType: string; status: string }>;
  clients: Map<string, { tokens: OktaTokenish[]; grants: OktaTokenish[] }>;
  risk: string;
  globallyRevoked: number;
}

export class OktaFake {
  readonly fake: VendorFake;
  readonly apiToken = `00${randomBytes(16).toString('hex')}`;
  readonly users = new Map<string, FakeOktaUser>();
  readonly logs: Array<{ eventType: string; targetId: string; published: string; visibleAt?: number }> = [];
  /** How long an event takes to show in the System Log (Okta writes it a few seconds late). */
  logLagMs = 0;
  private seq = 0;

  constructor() {
    this.fake = new VendorFake({
      vendor: 'okta',
      errorBody: oktaError,
      rateLimitHeaders: (s) => ({
        'x-rate-limit-limit': '600',
        'x-rate-limit-remaining': '0',
        'x-rate-limit-reset': String(Math.floor(Date.now() / 1000) + s),
      }),
      authenticate: (req) =>
        req.headers.authorization === `SSWS ${this.apiToken}`
          ? null
          : { status: 401, body: oktaError(401, '') },
      handlers: this.handlers(),
    });
  }

  start(): Promise<string> {
    return this.fake.start();
  }
  stop(): Promise<void> {
    return this.fake.stop();
  }

  private id(prefix: string): string {
    return `${prefix}${(++this.seq).toString(36).padStart(4, '0')}${randomBytes(6).toString('hex')}`;
  }

  /** An ACTIVE user with a session, two factors and a refresh token + consent grant for `clientId`. */
  addUser(login: string, clientId = '0oaportal'): FakeOktaUser {
    const u: FakeOktaUser = {
      id: this.id('00u'),
      login,
      status: 'ACTIVE',
      sessions: 1,
      factors: [
        { id: this.id('mfa'), factorType: 'push', status: 'ACTIVE' },
        { id: this.id('mfa'), factorType: 'token:software:totp', status: 'ACTIVE' },
      ],
      clients: new Map([
        [
          clientId,
          {
            tokens: [{ id: this.id('oar'), status: 'ACTIVE' }],
            grants: [{ id: this.id('oag'), status: 'ACTIVE' }],
          },
        ],
      ]),
      risk: 'NONE',
      globallyRevoked: 0,
    };
    this.users.set(u.id, u);
    return u;
  }

  byLogin(login: string): FakeOktaUser | undefined {
    return [...this.users.values()].find((u) => u.login === login);
  }

  private find(key: string | undefined): FakeOktaUser | undefined {
    return key === undefined ? undefined : (this.users.get(key) ?? this.byLogin(key));
  }

  private log(eventType: string, u: FakeOktaUser): void {
    this.logs.push({
      eventType,
      targetId: u.id,
      published: new Date().toISOString(),
      visibleAt: Date.now() + this.logLagMs,
    });
  }

  private userJson(u: FakeOktaUser): unknown {
    return {
      id: u.id,
      status: u.status,
      created: '2026-01-01T00:00:00.000Z',
      activated: '2026-01-01T00:00:00.000Z',
      statusChanged: null,
      lastLogin: null,
      lastUpdated: new Date().toISOString(),
      passwordChanged: null,
      type: { id: 'oty1' },
      profile: { login: u.login, email: u.login, firstName: 'Test', lastName: 'User' },
      credentials: { provider: { type: 'OKTA', name: 'OKTA' } },
      _links: { self: { href: `https://acme.okta.example/api/v1/users/${u.id}` } },
    };
  }

  private handlers(): Record<string, (r: FakeRequest) => FakeReply> {
    const notFound = (what: string) => ({ status: 404, body: oktaError(404, `${what} (User)`) });
    const withUser =
      (key: string, fn: (u: FakeOktaUser, r: FakeRequest) => FakeReply) => (r: FakeRequest) => {
        const u = this.find(r.params[key]);
        return u ? fn(u, r) : notFound(r.params[key] ?? '');
      };
    const lifecycle = (from: string[], to: string, event: string) =>
      withUser('id', (u) => {
        if (!from.includes(u.status))
          return { status: 400, body: oktaError(400, `cannot ${event} a user whose status is ${u.status}`) };
        u.status = to;
        this.log(`user.lifecycle.${event}`, u);
        return { status: 200 };
      });
    const client = (u: FakeOktaUser, r: FakeRequest) => u.clients.get(r.params.clientId!);
    const tokenJson = (u: FakeOktaUser, clientId: string, t: OktaTokenish) => ({
      id: t.id,
      status: t.status,
      clientId,
      userId: u.id,
      issuer: 'https://acme.okta.example/oauth2/default',
      created: '2026-12-01T00:00:00.000Z',
      lastUpdated: '2026-12-01T00:00:00.000Z',
      expiresAt: '2027-01-01T00:00:00.000Z',
      scopes: ['openid', 'offline_access'],
    });
    return {
      getUser: withUser('id', (u) => ({ status: 200, body: this.userJson(u) })),
      revokeUserSessions: withUser('userId', (u, r) => {
        u.sessions = 0;
        if (r.query.get('oauthTokens') === 'true')
          for (const c of u.clients.values()) for (const t of c.tokens) t.status = 'REVOKED';
        this.log('user.session.clear', u);
        return { status: 204 };
      }),
      suspendUser: lifecycle(['ACTIVE'], 'SUSPENDED', 'suspend'),
      unsuspendUser: lifecycle(['SUSPENDED'], 'ACTIVE', 'unsuspend'),
      expirePassword: withUser('id', (u) => {
        u.status = 'PASSWORD_EXPIRED';
        this.log('user.password.expire', u);
        return { status: 200, body: this.userJson(u) };
      }),
      resetFactors: withUser('id', (u) => {
        for (const f of u.factors) f.status = 'NOT_SETUP';
        this.log('user.mfa.factor.reset_all', u);
        return { status: 200 };
      }),
      listFactors: withUser('userId', (u) => ({
        status: 200,
        body: u.factors.map((f) => ({
          id: f.id,
          factorType: f.factorType,
          provider: 'OKTA',
          vendorName: 'OKTA',
          status: f.status,
          created: '2026-01-01T00:00:00.000Z',
          lastUpdated: '2026-01-01T00:00:00.000Z',
          profile: {},
        })),
      })),
      listUserClients: withUser('userId', (u) => ({
        status: 200,
        body: [...u.clients.keys()].map((c) => ({
          client_id: c,
          client_name: c,
          client_uri: `https://${c}.example`,
          logo_uri: `https://${c}.example/logo.png`,
        })),
      })),
      listRefreshTokensForUserAndClient: withUser('userId', (u, r) => {
        const c = client(u, r);
        return { status: 200, body: (c?.tokens ?? []).map((t) => tokenJson(u, r.params.clientId!, t)) };
      }),
      revokeTokensForUserAndClient: withUser('userId', (u, r) => {
        for (const t of client(u, r)?.tokens ?? []) t.status = 'REVOKED';
        return { status: 204 };
      }),
      listGrantsForUserAndClient: withUser('userId', (u, r) => ({
        status: 200,
        body: (client(u, r)?.grants ?? []).map((g) => ({
          id: g.id,
          status: g.status,
          clientId: r.params.clientId,
          userId: u.id,
          issuer: 'https://acme.okta.example',
          scopeId: 'okta.users.read.self',
          source: 'END_USER',
          created: '2026-12-01T00:00:00.000Z',
          lastUpdated: '2026-12-01T00:00:00.000Z',
        })),
      })),
      revokeGrantsForUserAndClient: withUser('userId', (u, r) => {
        for (const g of client(u, r)?.grants ?? []) g.status = 'REVOKED';
        return { status: 204 };
      }),
      getUserRisk: withUser('userId', (u) => ({ status: 200, body: { riskLevel: u.risk } })),
      upsertUserRisk: withUser('userId', (u, r) => {
        const b = r.body as { riskLevel: string; riskReason?: string };
        u.risk = b.riskLevel;
        return { status: 200, body: { riskLevel: b.riskLevel, reason: b.riskReason ?? 'override.by.admin' } };
      }),
      globalTokenRevocation: (r) => {
        const sub = (r.body as { sub_id: { format: string; id?: string } }).sub_id;
        const u = sub.format === 'opaque' ? this.find(sub.id) : undefined;
        if (!u) return { status: 400 };
        u.globallyRevoked++;
        u.sessions = 0;
        this.log('user.session.clear', u);
        return { status: 204 };
      },
      listLogEvents: (r) => {
        const since = Date.parse(r.query.get('since') ?? '1970-01-01T00:00:00Z');
        const f = /eventType eq "([^"]+)" and target\.id eq "([^"]+)"/.exec(r.query.get('filter') ?? '');
        const hits = this.logs.filter(
          (l) =>
            (l.visibleAt ?? 0) <= Date.now() &&
            Date.parse(l.published) >= since &&
            (!f || (l.eventType === f[1] && l.targetId === f[2])),
        );
        return {
          status: 200,
          body: hits.map((l) => ({
            uuid: randomBytes(8).toString('hex'),
            published: l.published,
            eventType: l.eventType,
            version: '0',
            severity: 'INFO',
            displayMessage: l.eventType,
            target: [{ id: l.targetId, type: 'User' }],
            outcome: { result: 'SUCCESS' },
          })),
        };
      },
    };
  }
}
