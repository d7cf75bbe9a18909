import { createHash } from 'node:crypto';
import { importPKCS8, SignJWT } from 'jose';
import { z } from 'zod';
import type { ActionType } from '../../../schemas/events.ts';
import type {
  ActionCapability,
  ApplyResult,
  IdentityProvider,
  PriorState,
  Probe,
  ProviderAction,
  ProviderDefinition,
  ProviderDeps,
  RevertResult,
} from './port.ts';
import { effectProbe, refuseIrreversibleRollback } from './refuse.ts';
import { readSecret } from './secrets.ts';
import { permanent, VendorHttp } from './vendor-http.ts';

/**
 * Google Workspace through the Admin SDK Directory API (plain HTTP), as a service account with
 * domain-wide delegation impersonating an administrator (`subject`): a signed JWT exchanged at the
 * token endpoint (configurable) for an access token.
 *
 * Identity mapping: a human, given by primary email, alias or user id; resolved once to the user id.
 * Actions:
 * - revoke_sessions: users.signOut (every web and device session) and tokens.delete for every app the
 *   user has granted. The Directory API cannot read a sign-out back, so verification proves the token
 *   half; a repeated sign-out after a crash is harmless.
 * - revoke_oauth_grant: tokens.delete for `args.clientId`.
 * - rotate_credential: verificationCodes.invalidate (the user's backup codes). The codes themselves are
 *   never recorded, only their fingerprints.
 * - disable_account: users.update suspended=true; rollback lifts it (only if the user was not
 *   suspended before).
 */
const GOOGLE_TOKENS = 'access tokens Google already issued to apps stay valid until they expire (1 h)';

const GOOGLE_ACTIONS: Partial<Record<ActionType, ActionCapability>> = {
  revoke_sessions: {
    reversibility: 'partially',
    residue: [
      'ended sessions are not restored: the user signs in again',
      'apps whose tokens were revoked need the user to authorize them again',
      GOOGLE_TOKENS,
    ],
  },
  revoke_oauth_grant: {
    reversibility: 'irreversible',
    residue: [
      'a revoked app grant cannot be restored by an administrator: the user authorizes the app again',
    ],
  },
  rotate_credential: {
    reversibility: 'irreversible',
    residue: ['invalidated backup codes cannot be restored: the user generates new ones'],
  },
  disable_account: { reversibility: 'reversible', residue: [] },
};

const SCOPES = [
  'https://www.googleapis.com/auth/admin.directory.user',
  'https://www.googleapis.com/auth/admin.directory.user.security',
];

export const GoogleConfigSchema = z
  .object({
    /** The service account's client_email. */
    clientEmail: z.string().min(3),
    /** Its PEM private key (PKCS#8), or the JSON key file downloaded from Google Cloud (…File). */
    privateKey: z.string().min(1).optional(),
    privateKeyFile: z.string().min(1).optional(),
    privateKeyEnv: z.string().min(1).optional(),
    /** The administrator the service account acts as (domain-wide delegation). */
    subject: z.string().min(3),
    baseUrl: z.url().default('https://admin.googleapis.com'),
    tokenUrl: z.url().default('https://oauth2.googleapis.com/token'),
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
  })
  .strict();
export type GoogleConfig = z.output<typeof GoogleConfigSchema>;

export type GooglePrior = {
  resolvedId: string;
  email: string;
  suspended: boolean;
  /** OAuth client ids the user had granted (revoke_sessions: all; revoke_oauth_grant: args.clientId). */
  clients?: string[];
  /** Fingerprints of the backup codes valid at capture (rotate_credential). */
  codes?: string[];
};

const seg = encodeURIComponent;
const USERS = '/admin/directory/v1/users';
const fingerprint = (code: string) =>
  `sha256:${createHash('sha256').update(code).digest('hex').slice(0, 16)}`;

/** A PEM key, or the `private_key` of a service-account JSON key file. */
function pemOf(raw: string): string {
  if (!raw.trim().startsWith('{')) return raw;
  const key = (JSON.parse(raw) as { private_key?: string }).private_key;
  if (!key) throw new Error('the JSON key has no private_key');
  return key;
}

export class GoogleProvider implements IdentityProvider {
  readonly name: string;
  private readonly http: VendorHttp;
  private readonly cfg: GoogleConfig;
  private readonly pem: string;
  private readonly now: () => number;
  private token: { value: string; expiresAt: number } | null = null;

  constructor(cfg: GoogleConfig, deps: Pick<ProviderDeps, 'now'> & { name?: string }) {
    this.name = deps.name ?? 'google';
    this.cfg = cfg;
    this.now = deps.now;
    const raw = readSecret(
      { value: cfg.privateKey, file: cfg.privateKeyFile, env: cfg.privateKeyEnv },
      `${this.name} privateKey`,
    );
    if (!raw) throw permanent(this.name, 'configure privateKey, privateKeyFile or privateKeyEnv');
    this.pem = pemOf(raw);
    this.http = new VendorHttp({
      provider: this.name,
      baseUrl: cfg.baseUrl,
      timeoutMs: cfg.timeoutMs,
      now: deps.now,
      describeError: (b) => {
        const e = (
          b as {
            error?: { message?: string; errors?: Array<{ reason?: string }> } | string;
            error_description?: string;
          }
        )?.error;
        if (typeof e === 'string')
          return `${e} ${(b as { error_description?: string }).error_description ?? ''}`.trim();
        return e ? `${e.errors?.[0]?.reason ?? ''} ${e.message ?? ''}`.trim() : undefined;
      },
    });
  }

  supports(action: ActionType): boolean {
    return action in GOOGLE_ACTIONS;
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > this.now() + 60_000) return this.token.value;
    const iat = Math.floor(this.now() / 1000);
    const assertion = await new SignJWT({ scope: SCOPES.join(' ') })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuer(this.cfg.clientEmail)
      .setSubject(this.cfg.subject)
      .setAudience(this.cfg.tokenUrl)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(await importPKCS8(this.pem, 'RS256'));
    const r = await this.http.send('POST', this.cfg.tokenUrl, {
      form: { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion },
    });
    const b = r.body as { access_token?: string; expires_in?: number };
    if (!b.access_token) throw permanent(this.name, 'the token endpoint answered without an access_token');
    this.token = { value: b.access_token, expiresAt: this.now() + (b.expires_in ?? 3600) * 1000 };
    return b.access_token;
  }

  private async send(method: string, path: string, req: Parameters<VendorHttp['send']>[2] = {}) {
    const token = await this.accessToken();
    return this.http.send(method, path, {
      ...req,
      headers: { authorization: `Bearer ${token}`, ...(req.headers ?? {}) },
    });
  }

  private async user(key: string): Promise<{ id: string; primaryEmail: string; suspended?: boolean }> {
    return (await this.send('GET', `${USERS}/${seg(key)}`)).body as {
      id: string;
      primaryEmail: string;
      suspended?: boolean;
    };
  }

  private async clients(id: string): Promise<string[]> {
    const r = await this.send('GET', `${USERS}/${seg(id)}/tokens`);
    return ((r.body as { items?: Array<{ clientId: string }> } | undefined)?.items ?? []).map(
      (t) => t.clientId,
    );
  }

  private async codes(id: string): Promise<string[]> {
    const r = await this.send('GET', `${USERS}/${seg(id)}/verificationCodes`);
    return ((r.body as { items?: Array<{ verificationCode: string }> } | undefined)?.items ?? []).map((c) =>
      fingerprint(c.verificationCode),
    );
  }

  async capture(a: ProviderAction): Promise<PriorState> {
    if (!this.supports(a.action)) throw permanent(this.name, `Google Workspace has no ${a.action}`);
    const u = await this.user(a.identity.id);
    const prior: GooglePrior = { resolvedId: u.id, email: u.primaryEmail, suspended: u.suspended === true };
    if (a.action === 'revoke_sessions') prior.clients = await this.clients(u.id);
    if (a.action === 'revoke_oauth_grant') {
      const clientId = typeof a.args.clientId === 'string' ? a.args.clientId : undefined;
      if (!clientId) throw permanent(this.name, 'revoke_oauth_grant needs args.clientId (the OAuth client)');
      prior.clients = [clientId];
    }
    if (a.action === 'rotate_credential') prior.codes = await this.codes(u.id);
    return prior;
  }

  async apply(a: ProviderAction, prior: PriorState): Promise<ApplyResult> {
    const p = prior as GooglePrior;
    const id = seg(p.resolvedId);
    const appliedAt = new Date(this.now()).toISOString();
    switch (a.action) {
      case 'revoke_sessions': {
        // Signing out again is harmless, so a repeat (after a crash) signs out again rather than guessing.
        await this.send('POST', `${USERS}/${id}/signOut`);
        const left = new Set(await this.clients(p.resolvedId));
        const revoked = (p.clients ?? []).filter((c) => left.has(c));
        for (const c of revoked)
          await this.send('DELETE', `${USERS}/${id}/tokens/${seg(c)}`, { accept: [404] });
        return { noop: false, appliedAt, signedOut: true, tokensRevoked: revoked };
      }
      case 'revoke_oauth_grant': {
        if (await this.applied(a.action, p)) return { noop: true, appliedAt };
        await this.send('DELETE', `${USERS}/${id}/tokens/${seg(p.clients![0]!)}`, { accept: [404] });
        return { noop: false, appliedAt };
      }
      case 'rotate_credential':
        if (await this.applied(a.action, p)) return { noop: true, appliedAt };
        await this.send('POST', `${USERS}/${id}/verificationCodes/invalidate`);
        return { noop: false, appliedAt, invalidated: p.codes?.length ?? 0 };
      default:
        if (await this.applied(a.action, p)) return { noop: true, appliedAt };
        await this.send('PUT', `${USERS}/${id}`, { json: { suspended: true } });
        return { noop: false, appliedAt };
    }
  }

  private async applied(action: ActionType, p: GooglePrior): Promise<boolean> {
    switch (action) {
      case 'revoke_sessions':
      case 'revoke_oauth_grant': {
        const left = new Set(await this.clients(p.resolvedId));
        return !(p.clients ?? []).some((c) => left.has(c));
      }
      case 'rotate_credential': {
        const now = new Set(await this.codes(p.resolvedId));
        return !(p.codes ?? []).some((c) => now.has(c));
      }
      default:
        return (await this.user(p.resolvedId)).suspended === true;
    }
  }

  async isApplied(a: ProviderAction, prior: PriorState): Promise<boolean> {
    return this.applied(a.action, prior as GooglePrior);
  }

  async verify(a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<Probe[]> {
    const p = prior as GooglePrior;
    const ok = await this.applied(a.action, p);
    const probe: Record<string, string> = {
      revoke_sessions: 'app tokens granted at capture revoked (tokens.list)',
      revoke_oauth_grant: `app ${p.clients?.[0] ?? ''} has no token (tokens.list)`,
      rotate_credential: 'no backup code from capture is valid (verificationCodes.list)',
      disable_account: 'user suspended',
    };
    return effectProbe(probe[a.action]!, p.email, ok);
  }

  async revert(a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<RevertResult> {
    const p = prior as GooglePrior;
    refuseIrreversibleRollback(this.name, a.action, GOOGLE_ACTIONS);
    const cap = GOOGLE_ACTIONS[a.action]!;
    if (a.action === 'disable_account') {
      if (!p.suspended && (await this.user(p.resolvedId)).suspended === true)
        await this.send('PUT', `${USERS}/${seg(p.resolvedId)}`, { json: { suspended: false } });
      return { restored: [`${p.email}: suspended ${p.suspended}`], residue: [] };
    }
    return {
      restored: [`${p.email}: nothing was suspended; the user can sign in again`],
      residue: cap.residue,
    };
  }
}

export const googleProvider: ProviderDefinition<GoogleConfig> = {
  name: 'google',
  configSchema: GoogleConfigSchema as unknown as z.ZodType<GoogleConfig>,
  create: (config, deps) => new GoogleProvider(config, deps),
  actions: GOOGLE_ACTIONS,
};
