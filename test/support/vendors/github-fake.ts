/**
 * GitHub's REST API as far as the GitHub adapter uses it, kept in memory and checked against the
 * description in @octokit/openapi (test/fixtures/vendors/github/operations.json): secret-scanning alerts
 * with their secrets, which credentials are alive, OAuth apps and their tokens, deploy keys per repo and
 * organizations' fine-grained token grants. POST /credentials/revoke is refused when authenticated (as
 * GitHub does) and spends a 60-an-hour budget, answered in x-ratelimit-* headers.
 */
import { randomBytes } from 'node:crypto';
import { type FakeReply, type FakeRequest, VendorFake } from './vendor-fake.ts';

const DOCS = 'https://docs.github.com/rest';

function githubError(status: number, message: string): unknown {
  const text: Record<number, string> = {
    401: 'Bad credentials',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    422: 'Validation Failed',
    429: 'API rate limit exceeded',
  };
  return {
    message: status === 400 ? `Problems parsing JSON: ${message}` : (text[status] ?? message),
    documentation_url: DOCS,
    status: String(status),
  };
}

interface Alert {
  owner: string;
  repo: string;
  number: number;
  secretType: string;
  secret: string;
  state?: 'open' | 'resolved';
  resolution?: string | null;
  comment?: string | null;
}
interface Credential {
  alive: boolean;
  login: string;
  clientId?: string;
}
interface DeployKey {
  id: number;
  key: string;
  title: string;
  read_only: boolean;
  created_at: string;
}
interface OrgPat {
  id: number;
  owner: string;
  tokenName: string;
}

const user = (login: string, id = 1000) => ({
  login,
  id,
  node_id: `U_${id}`,
  avatar_url: `https://avatars.example/${login}`,
  gravatar_id: '',
  url: `https://api.github.example/users/${login}`,
  html_url: `https://github.example/${login}`,
  followers_url: 'https://api.github.example/f',
  following_url: 'https://api.github.example/f',
  gists_url: 'https://api.github.example/g',
  starred_url: 'https://api.github.example/s',
  subscriptions_url: 'https://api.github.example/s',
  organizations_url: 'https://api.github.example/o',
  repos_url: 'https://api.github.example/r',
  events_url: 'https://api.github.example/e',
  received_events_url: 'https://api.github.example/e',
  type: 'User',
  site_admin: false,
});

function randomSshPublicKey(): string {
  const type = Buffer.from('ssh-ed25519');
  const key = randomBytes(32);
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return `ssh-ed25519 ${Buffer.concat([len(type.length), type, len(key.length), key]).toString('base64')}`;
}

export class GitHubFake {
  readonly fake: VendorFake;
  readonly adminToken = `ghs_${randomBytes(12).toString('hex')}`;
  readonly alerts = new Map<string, Alert>();
  readonly credentials = new Map<string, Credential>();
  readonly apps = new Map<string, string>();
  readonly deployKeys = new Map<string, DeployKey[]>();
  readonly orgPats = new Map<string, OrgPat[]>();
  /** POST /credentials/revoke calls left this hour (GitHub: 60). */
  revokeBudget = 60;
  private nextId = 100;

  constructor() {
    const h = this.handlers();
    this.fake = new VendorFake({
      vendor: 'github',
      errorBody: githubError,
      rateLimitHeaders: (s) => ({
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + s),
      }),
      authenticate: (req) => this.authenticate(req),
      handlers: h,
    });
  }

  start(): Promise<string> {
    return this.fake.start();
  }
  stop(): Promise<void> {
    return this.fake.stop();
  }

  // ------------------------------------------------------------ fixtures

  /** A leaked, live credential with its secret-scanning alert; returns the identity id the normalizer gives it. */
  leak(
    opts: { owner?: string; repo?: string; secretType?: string; login?: string; clientId?: string } = {},
  ): { identityId: string; secret: string } {
    const owner = opts.owner ?? 'acme';
    const repo = opts.repo ?? 'app';
    const secretType =
      opts.secretType ?? (opts.clientId ? 'github_oauth_access_token' : 'github_personal_access_token');
    const secret = `${opts.clientId ? 'gho' : 'ghp'}_${randomBytes(18).toString('hex')}`;
    const number = this.nextId++;
    this.alerts.set(`${owner}/${repo}#${number}`, { owner, repo, number, secretType, secret });
    this.credentials.set(secret, {
      alive: true,
      login: opts.login ?? 'octocat',
      ...(opts.clientId ? { clientId: opts.clientId } : {}),
    });
    return { identityId: `${secretType}:${owner}/${repo}#${number}`, secret };
  }

  addApp(clientId: string): string {
    const secret = randomBytes(20).toString('hex');
    this.apps.set(clientId, secret);
    return secret;
  }

  addDeployKey(owner: string, repo: string, title = 'deploy'): DeployKey {
    const k: DeployKey = {
      id: this.nextId++,
      key: randomSshPublicKey(),
      title,
      read_only: true,
      created_at: new Date().toISOString(),
    };
    const list = this.deployKeys.get(`${owner}/${repo}`) ?? [];
    list.push(k);
    this.deployKeys.set(`${owner}/${repo}`, list);
    return k;
  }

  addOrgPat(org: string, owner: string, tokenName = 'ci'): OrgPat {
    const g: OrgPat = { id: this.nextId++, owner, tokenName };
    const list = this.orgPats.get(org) ?? [];
    list.push(g);
    this.orgPats.set(org, list);
    return g;
  }

  // ------------------------------------------------------------ protocol

  private authenticate(req: FakeRequest): FakeReply | null {
    const auth = req.headers.authorization;
    switch (req.op.id) {
      case 'credentials/revoke':
        return auth ? { status: 403, body: githubError(403, 'authenticated requests are refused') } : null;
      case 'rate-limit/get':
        if (!auth) return null;
        return this.credentials.get(auth.replace(/^(Bearer|token) /, ''))?.alive ||
          auth === `Bearer ${this.adminToken}`
          ? null
          : { status: 401, body: githubError(401, '') };
      case 'apps/check-token':
      case 'apps/delete-authorization': {
        const [id, secret] = Buffer.from((auth ?? '').replace(/^Basic /, ''), 'base64')
          .toString()
          .split(':');
        return id === req.params.client_id && secret !== undefined && this.apps.get(id ?? '') === secret
          ? null
          : { status: 401, body: githubError(401, '') };
      }
      default:
        return auth === `Bearer ${this.adminToken}` ? null : { status: 401, body: githubError(401, '') };
    }
  }

  private handlers(): Record<string, (r: FakeRequest) => FakeReply> {
    const notFound = { status: 404, body: githubError(404, '') };
    return {
      'credentials/revoke': (r) => {
        if (this.revokeBudget <= 0)
          return {
            status: 403,
            headers: {
              'x-ratelimit-limit': '60',
              'x-ratelimit-remaining': '0',
              'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
            },
            body: githubError(403, 'rate limited'),
          };
        this.revokeBudget--;
        for (const c of (r.body as { credentials: string[] }).credentials) {
          const cred = this.credentials.get(c);
          if (cred) cred.alive = false;
        }
        return {
          status: 202,
          headers: {
            'x-ratelimit-limit': '60',
            'x-ratelimit-remaining': String(this.revokeBudget),
            'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
          },
          body: {},
        };
      },
      'rate-limit/get': () => {
        const rate = { limit: 5000, remaining: 4999, reset: Math.floor(Date.now() / 1000) + 3600, used: 1 };
        return { status: 200, body: { resources: { core: rate, search: rate }, rate } };
      },
      'secret-scanning/update-alert': (r) => {
        const a = this.alerts.get(`${r.params.owner}/${r.params.repo}#${r.params.alert_number}`);
        if (!a) return { status: 404, body: githubError(404, '') };
        const b = r.body as {
          state?: 'open' | 'resolved';
          resolution?: string | null;
          resolution_comment?: string | null;
        };
        if (b.state === 'resolved' && !b.resolution)
          return { status: 422, body: githubError(422, 'resolution is required') };
        if (b.state) a.state = b.state;
        a.resolution = b.resolution ?? null;
        a.comment = b.resolution_comment ?? null;
        return { status: 200, body: this.alertJson(r, a) };
      },
      'secret-scanning/get-alert': (r) => {
        const a = this.alerts.get(`${r.params.owner}/${r.params.repo}#${r.params.alert_number}`);
        if (!a) return { status: 404 };
        return { status: 200, body: this.alertJson(r, a) };
      },
      'repos/list-deploy-keys': (r) => ({
        status: 200,
        body: (this.deployKeys.get(`${r.params.owner}/${r.params.repo}`) ?? []).map((k) =>
          this.keyJson(r, k),
        ),
      }),
      'repos/get-deploy-key': (r) => {
        const k = this.deployKeys
          .get(`${r.params.owner}/${r.params.repo}`)
          ?.find((x) => x.id === Number(r.params.key_id));
        return k ? { status: 200, body: this.keyJson(r, k) } : notFound;
      },
      'repos/create-deploy-key': (r) => {
        const b = r.body as { title?: string; key: string; read_only?: boolean };
        const list = this.deployKeys.get(`${r.params.owner}/${r.params.repo}`) ?? [];
        if (list.some((k) => k.key === b.key))
          return {
            status: 422,
            body: {
              message: 'Validation Failed',
              errors: [
                { resource: 'PublicKey', code: 'custom', field: 'key', message: 'key is already in use' },
              ],
              documentation_url: DOCS,
            },
          };
        const k: DeployKey = {
          id: this.nextId++,
          key: b.key,
          title: b.title ?? '',
          read_only: b.read_only ?? false,
          created_at: new Date().toISOString(),
        };
        list.push(k);
        this.deployKeys.set(`${r.params.owner}/${r.params.repo}`, list);
        return { status: 201, body: this.keyJson(r, k) };
      },
      'repos/delete-deploy-key': (r) => {
        const list = this.deployKeys.get(`${r.params.owner}/${r.params.repo}`) ?? [];
        const i = list.findIndex((k) => k.id === Number(r.params.key_id));
        if (i < 0) return notFound;
        list.splice(i, 1);
        return { status: 204 };
      },
      'apps/check-token': (r) => {
        const token = (r.body as { access_token: string }).access_token;
        const c = this.credentials.get(token);
        if (!c?.alive || c.clientId !== r.params.client_id) return notFound;
        const now = new Date().toISOString();
        return {
          status: 200,
          body: {
            id: 1,
            url: 'https://api.github.example/authorizations/1',
            scopes: ['repo'],
            token,
            token_last_eight: token.slice(-8),
            hashed_token: null,
            app: { client_id: c.clientId, name: 'app', url: 'https://app.example' },
            note: null,
            note_url: null,
            updated_at: now,
            created_at: now,
            fingerprint: null,
            user: user(c.login),
            expires_at: null,
          },
        };
      },
      'apps/delete-authorization': (r) => {
        const token = (r.body as { access_token: string }).access_token;
        const c = this.credentials.get(token);
        if (!c || c.clientId !== r.params.client_id)
          return { status: 422, body: { message: 'Validation Failed', documentation_url: DOCS } };
        // A grant revocation kills every token the user holds for the app.
        for (const other of this.credentials.values())
          if (other.clientId === c.clientId && other.login === c.login) other.alive = false;
        return { status: 204 };
      },
      'orgs/list-pat-grants': (r) => {
        const ids = r.query.getAll('token_id').flatMap((v) => v.split(','));
        const owners = r.query.getAll('owner');
        const list = (this.orgPats.get(r.params.org!) ?? []).filter(
          (g) =>
            (ids.length === 0 || ids.includes(String(g.id))) &&
            (owners.length === 0 || owners.includes(g.owner)),
        );
        return {
          status: 200,
          body: list.map((g) => ({
            id: g.id,
            owner: user(g.owner),
            repository_selection: 'all',
            repositories_url: `https://api.github.example/orgs/${r.params.org}/personal-access-tokens/${g.id}/repositories`,
            permissions: { organization: {}, repository: { contents: 'read' }, other: {} },
            access_granted_at: '2026-11-01T00:00:00Z',
            token_id: g.id + 5000,
            token_name: g.tokenName,
            token_expired: false,
            token_expires_at: null,
            token_last_used_at: null,
          })),
        };
      },
      'orgs/update-pat-access': (r) => {
        const list = this.orgPats.get(r.params.org!) ?? [];
        const i = list.findIndex((g) => g.id === Number(r.params.pat_id));
        if (i < 0) return notFound;
        list.splice(i, 1);
        return { status: 204 };
      },
    };
  }

  private alertJson(r: FakeRequest, a: Alert): unknown {
    const alive = this.credentials.get(a.secret)?.alive ?? false;
    return {
      number: a.number,
      created_at: '2026-12-01T00:00:00Z',
      updated_at: null,
      url: `https://api.github.example/repos/${a.owner}/${a.repo}/secret-scanning/alerts/${a.number}`,
      html_url: `https://github.example/${a.owner}/${a.repo}/security/secret-scanning/${a.number}`,
      locations_url: `https://api.github.example/repos/${a.owner}/${a.repo}/secret-scanning/alerts/${a.number}/locations`,
      state: a.state ?? 'open',
      resolution: a.resolution ?? null,
      resolved_at: a.state === 'resolved' ? new Date().toISOString() : null,
      resolved_by: null,
      resolution_comment: a.comment ?? null,
      secret_type: a.secretType,
      secret_type_display_name: 'GitHub Personal Access Token',
      ...(r.query.get('hide_secret') === 'true' ? {} : { secret: a.secret }),
      validity: alive ? 'active' : 'inactive',
      publicly_leaked: false,
      multi_repo: false,
    };
  }

  private keyJson(r: FakeRequest, k: DeployKey): unknown {
    return {
      id: k.id,
      key: k.key,
      url: `https://api.github.example/repos/${r.params.owner}/${r.params.repo}/keys/${k.id}`,
      title: k.title,
      verified: true,
      created_at: k.created_at,
      read_only: k.read_only,
      added_by: 'octocat',
      last_used: null,
      enabled: true,
    };
  }
}
