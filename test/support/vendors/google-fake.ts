/**
 * The Admin SDK Directory API as far as the Google Workspace adapter uses it, in memory and checked
 * against Google's discovery document (test/fixtures/vendors/google/operations.json), plus the OAuth
 * token endpoint for service accounts: it verifies the signed JWT (issuer, subject, audience, scopes,
 * signature with the service account's public key) before issuing an access token. Users keep their
 * suspension, sessions, app tokens and backup codes.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createLocalJWKSet, exportJWK, importSPKI, jwtVerify } from 'jose';
import { type FakeReply, type FakeRequest, VendorFake } from './vendor-fake.ts';

const REASONS: Record<number, [string, string]> = {
  400: ['invalid', 'INVALID_ARGUMENT'],
  401: ['authError', 'UNAUTHENTICATED'],
  403: ['forbidden', 'PERMISSION_DENIED'],
  404: ['notFound', 'NOT_FOUND'],
  409: ['duplicate', 'ALREADY_EXISTS'],
  429: ['rateLimitExceeded', 'RESOURCE_EXHAUSTED'],
  500: ['backendError', 'INTERNAL'],
  503: ['backendError', 'UNAVAILABLE'],
};

function googleError(status: number, message: string): unknown {
  const [reason, s] = REASONS[status] ?? ['backendError', 'INTERNAL'];
  return { error: { code: status, message, errors: [{ message, domain: 'global', reason }], status: s } };
}

export interface FakeGoogleUser {
  id: string;
  email: string;
  suspended: boolean;
  sessions: number;
  tokens: string[];
  codes: string[];
}

export class GoogleFake {
  readonly fake: VendorFake;
  readonly clientEmail = 'tourniquet@acme-sec.iam.gserviceaccount.example';
  readonly subject = 'admin@acme.example';
  readonly privateKeyPem: string;
  private readonly publicKeyPem: string;
  readonly users = new Map<string, FakeGoogleUser>();
  private readonly tokens = new Set<string>();
  origin = '';

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.fake = new VendorFake({
      vendor: 'google',
      errorBody: googleError,
      authenticate: (req) =>
        this.tokens.has((req.headers.authorization ?? '').replace(/^Bearer /, ''))
          ? null
          : { status: 401, body: googleError(401, 'Request had invalid authentication credentials.') },
      handlers: this.handlers(),
      raw: { 'POST /token': (r) => this.issueToken(r.rawBody) },
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
    return `${this.origin}/token`;
  }

  private async issueToken(body: string): Promise<FakeReply> {
    const f = new URLSearchParams(body);
    if (f.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer')
      return {
        status: 400,
        body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type' },
      };
    try {
      const jwk = await exportJWK(await importSPKI(this.publicKeyPem, 'RS256'));
      const { payload } = await jwtVerify(
        f.get('assertion') ?? '',
        createLocalJWKSet({ keys: [{ ...jwk, alg: 'RS256' }] }),
        {
          issuer: this.clientEmail,
          subject: this.subject,
          audience: this.tokenUrl,
        },
      );
      const scopes = String(payload.scope ?? '').split(' ');
      if (!scopes.includes('https://www.googleapis.com/auth/admin.directory.user.security'))
        return {
          status: 400,
          body: { error: 'invalid_scope', error_description: 'missing admin.directory.user.security' },
        };
    } catch (e) {
      return {
        status: 400,
        body: { error: 'invalid_grant', error_description: `Invalid JWT: ${(e as Error).message}` },
      };
    }
    const t = `ya29.${randomBytes(24).toString('base64url')}`;
    this.tokens.add(t);
    return { status: 200, body: { access_token: t, expires_in: 3599, token_type: 'Bearer' } };
  }

  addUser(email: string, apps = ['123-app.apps.googleusercontent.example']): FakeGoogleUser {
    const u: FakeGoogleUser = {
      id: String(100_000_000_000_000_000n + BigInt(this.users.size + 1)),
      email,
      suspended: false,
      sessions: 1,
      tokens: [...apps],
      codes: Array.from({ length: 10 }, () => randomBytes(4).toString('hex')),
    };
    this.users.set(u.id, u);
    return u;
  }

  private find(key: string | undefined): FakeGoogleUser | undefined {
    return key === undefined
      ? undefined
      : (this.users.get(key) ?? [...this.users.values()].find((u) => u.email === key));
  }

  private userJson(u: FakeGoogleUser): unknown {
    return {
      kind: 'admin#directory#user',
      id: u.id,
      etag: '"e"',
      primaryEmail: u.email,
      name: { givenName: 'Test', familyName: 'User', fullName: 'Test User' },
      isAdmin: false,
      isDelegatedAdmin: false,
      lastLoginTime: '2026-12-01T00:00:00.000Z',
      creationTime: '2026-01-01T00:00:00.000Z',
      agreedToTerms: true,
      suspended: u.suspended,
      ...(u.suspended ? { suspensionReason: 'ADMIN' } : {}),
      archived: false,
      changePasswordAtNextLogin: false,
      ipWhitelisted: false,
      emails: [{ address: u.email, primary: true }],
      customerId: 'C0acme',
      orgUnitPath: '/',
      isMailboxSetup: true,
      isEnrolledIn2Sv: true,
      isEnforcedIn2Sv: false,
      includeInGlobalAddressList: true,
    };
  }

  private handlers(): Record<string, (r: FakeRequest) => FakeReply> {
    const withUser = (fn: (u: FakeGoogleUser, r: FakeRequest) => FakeReply) => (r: FakeRequest) => {
      const u = this.find(r.params.userKey);
      return u ? fn(u, r) : { status: 404, body: googleError(404, 'Resource Not Found: userKey') };
    };
    return {
      'directory.users.get': withUser((u) => ({ status: 200, body: this.userJson(u) })),
      'directory.users.update': withUser((u, r) => {
        const b = r.body as { suspended?: boolean };
        if (typeof b.suspended === 'boolean') {
          u.suspended = b.suspended;
          if (b.suspended) u.sessions = 0;
        }
        return { status: 200, body: this.userJson(u) };
      }),
      'directory.users.signOut': withUser((u) => {
        u.sessions = 0;
        return { status: 204 };
      }),
      'directory.tokens.list': withUser((u) => ({
        status: 200,
        body: {
          kind: 'admin#directory#tokenList',
          etag: '"t"',
          items: u.tokens.map((c) => ({
            kind: 'admin#directory#token',
            clientId: c,
            displayText: c,
            anonymous: false,
            nativeApp: false,
            scopes: ['openid', 'email'],
            userKey: u.id,
            etag: '"t"',
          })),
        },
      })),
      'directory.tokens.delete': withUser((u, r) => {
        if (!u.tokens.includes(r.params.clientId!))
          return { status: 404, body: googleError(404, 'Resource Not Found: clientId') };
        u.tokens = u.tokens.filter((c) => c !== r.params.clientId);
        return { status: 204 };
      }),
      'directory.verificationCodes.list': withUser((u) => ({
        status: 200,
        body: {
          kind: 'admin#directory#verificationCodesList',
          etag: '"v"',
          items: u.codes.map((c) => ({
            kind: 'admin#directory#verificationCode',
            userId: u.id,
            verificationCode: c,
            etag: '"v"',
          })),
        },
      })),
      'directory.verificationCodes.invalidate': withUser((u) => {
        u.codes = [];
        return { status: 204 };
      }),
    };
  }
}
