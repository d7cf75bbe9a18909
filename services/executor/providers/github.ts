import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ProviderError, RollbackRefusedError } from '../../../platform/errors.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import type { ActionType } from '../../../schemas/events.ts';
import type {
  ActionCapability,
  ApplyResult,
  FeedbackCall,
  IdentityProvider,
  PriorState,
  Probe,
  ProviderAction,
  ProviderDefinition,
  ProviderDeps,
  RevertResult,
  Verdict,
} from './port.ts';
import { readSecret, requireSecret } from './secrets.ts';
import { Batcher, permanent, VendorHttp } from './vendor-http.ts';

/**
 * GitHub (REST API, version 2022-11-28) through plain HTTP.
 *
 * Targets, by action and identity:
 * - revoke_tokens, identity type api_key with id `<secret_type>:<owner>/<repo>#<alert number>` (the id the
 *   secret-scanning normalizer gives a leaked credential): the alert is read to get the secret, which is
 *   revoked with POST /credentials/revoke (unauthenticated, as GitHub requires; batched up to 1000 per
 *   call; at most 60 calls an hour, so an exhausted budget is a retriable error carrying the reset time).
 *   The secret itself is never recorded: only its fingerprint.
 * - revoke_tokens, identity id `pat:<pat_id>` with the organization as tenant (or args.org): the
 *   organization revokes a fine-grained personal access token's access (POST /orgs/{org}/personal-access-tokens/{pat_id}).
 * - revoke_oauth_grant, the leaked-credential identity above and args.clientId: the OAuth app's grant for
 *   the token's user is deleted (DELETE /applications/{client_id}/grant, authenticated as the app).
 * - disable_service_account, identity id `deploy-key:<owner>/<repo>/<key id | SHA256:fingerprint>`: the
 *   deploy key is deleted; rollback adds the same public key again (it gets a new id).
 *
 * Feedback: a verdict resolves the secret-scanning alert (revoked / false_positive).
 * Probes: a credential is alive while GET /rate_limit accepts it (no side effects, costs no quota);
 * an OAuth token while POST /applications/{client_id}/token finds it.
 */
const GITHUB_ACTIONS: Partial<Record<ActionType, ActionCapability>> = {
  revoke_tokens: {
    reversibility: 'irreversible',
    residue: [
      'GitHub cannot reactivate a revoked credential: its owner issues a new one and updates every consumer',
      "an organization's revoked fine-grained token needs a new access request and an org owner's approval",
    ],
  },
  revoke_oauth_grant: {
    reversibility: 'irreversible',
    residue: ['every token of the grant is revoked: the user authorizes the OAuth app again'],
  },
  disable_service_account: {
    reversibility: 'partially',
    residue: [
      'the deploy key comes back under a new id',
      'deployments and clones that used the key failed while it was deleted',
    ],
  },
};

export const GitHubConfigSchema = z
  .object({
    baseUrl: z.url().default('https://api.github.com'),
    /** Reads secret-scanning alerts (secret included), deploy keys and org token grants. */
    token: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    tokenEnv: z.string().min(1).optional(),
    /** OAuth apps whose grants may be revoked (revoke_oauth_grant), each authenticated as itself. */
    oauthApps: z
      .array(
        z
          .object({
            clientId: z.string().min(1),
            clientSecret: z.string().min(1).optional(),
            clientSecretFile: z.string().min(1).optional(),
            clientSecretEnv: z.string().min(1).optional(),
          })
          .strict(),
      )
      .default([]),
    /** How long credential revocations are collected into one call (default 500 ms). */
    revokeBatchWindowMs: z.number().int().min(0).max(60_000).default(500),
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
  })
  .strict();

type CredentialPrior = {
  target: 'credential';
  resolvedId: string;
  owner: string;
  repo: string;
  alertNumber: number;
  secretType: string;
  fingerprint: string;
  activeAtCapture: boolean;
};
type OAuthGrantPrior = Omit<CredentialPrior, 'target'> & {
  target: 'oauth-grant';
  clientId: string;
  user: string | null;
};
type OrgPatPrior = {
  target: 'org-pat';
  resolvedId: string;
  org: string;
  patId: number;
  tokenName: string;
  owner: string;
  present: boolean;
};
type DeployKeyPrior = {
  target: 'deploy-key';
  resolvedId: string;
  owner: string;
  repo: string;
  keyId: number;
  title: string;
  publicKey: string;
  readOnly: boolean;
  fingerprint: string;
};
export type GitHubPrior = CredentialPrior | OAuthGrantPrior | OrgPatPrior | DeployKeyPrior;

interface DeployKey {
  id: number;
  key: string;
  title: string;
  read_only: boolean;
}

/** SHA256 fingerprint of an OpenSSH public key line, as `ssh-keygen -lf` prints it. */
export function sshFingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1] ?? '';
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

function secretFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex').slice(0, 16)}`;
}

const seg = encodeURIComponent;

export class GitHubProvider implements IdentityProvider {
  readonly name: string;
  private readonly http: VendorHttp;
  private readonly token: string | undefined;
  private readonly apps: Map<string, string>;
  private readonly now: () => number;
  private readonly revokeBatch: Batcher<string>;
  /** The unauthenticated revoke budget is exhausted until then (epoch ms). */
  private revokeBlockedUntil = 0;

  constructor(cfg: z.output<typeof GitHubConfigSchema>, deps: Pick<ProviderDeps, 'now'> & { name?: string }) {
    this.name = deps.name ?? 'github';
    this.now = deps.now;
    this.token = readSecret(
      { value: cfg.token, file: cfg.tokenFile, env: cfg.tokenEnv },
      `${this.name} token`,
    );
    this.apps = new Map(
      cfg.oauthApps.map((a) => [
        a.clientId,
        requireSecret(
          { value: a.clientSecret, file: a.clientSecretFile, env: a.clientSecretEnv },
          `${this.name} oauthApps[${a.clientId}].clientSecret`,
        ),
      ]),
    );
    this.http = new VendorHttp({
      provider: this.name,
      baseUrl: cfg.baseUrl,
      timeoutMs: cfg.timeoutMs,
      now: deps.now,
      describeError: (b) => (b && typeof b === 'object' && 'message' in b ? String(b.message) : undefined),
      rateLimitWaitMs: (h, nowMs) => rateLimitReset(h, nowMs),
      retriableStatus: (status, h) => status === 403 && h['x-ratelimit-remaining'] === '0',
    });
    this.revokeBatch = new Batcher<string>({
      windowMs: cfg.revokeBatchWindowMs,
      max: 1000,
      flush: (credentials) => this.revokeNow(credentials),
    });
  }

  supports(action: ActionType): boolean {
    return action in GITHUB_ACTIONS;
  }

  // ---------------------------------------------------------------- requests

  private headers(auth: 'token' | 'none' | { basic: string } | { bearer: string }): Record<string, string> {
    const h: Record<string, string> = {
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': 'tourniquet',
    };
    if (auth === 'token') {
      if (!this.token) throw permanent(this.name, 'configure token (or tokenFile/tokenEnv) for this action');
      h.authorization = `Bearer ${this.token}`;
    } else if (auth !== 'none') {
      h.authorization = 'basic' in auth ? `Basic ${auth.basic}` : `Bearer ${auth.bearer}`;
    }
    return h;
  }

  private appAuth(clientId: string): { basic: string } {
    const secret = this.apps.get(clientId);
    if (!secret) throw permanent(this.name, `OAuth app ${clientId} is not configured (oauthApps)`);
    return { basic: Buffer.from(`${clientId}:${secret}`).toString('base64') };
  }

  /** One POST /credentials/revoke for a batch; unauthenticated (an authenticated call gets 403). */
  private async revokeNow(credentials: string[]): Promise<void> {
    const wait = this.revokeBlockedUntil - this.now();
    if (wait > 0) {
      throw new ProviderError(`${this.name}: the credential revocation budget (60 an hour) is spent`, {
        retriable: true,
        provider: this.name,
        retryAfterMs: wait,
        details: { request: 'POST /credentials/revoke' },
      });
    }
    try {
      const r = await this.http.send('POST', '/credentials/revoke', {
        headers: this.headers('none'),
        json: { credentials },
      });
      if (r.headers['x-ratelimit-remaining'] === '0')
        this.revokeBlockedUntil = this.now() + (rateLimitReset(r.headers, this.now()) ?? 3_600_000);
    } catch (e) {
      if (e instanceof ProviderError && e.retryAfterMs !== undefined)
        this.revokeBlockedUntil = this.now() + e.retryAfterMs;
      throw e;
    }
  }

  // ---------------------------------------------------------------- resolution

  private parseAlert(a: ProviderAction): {
    owner: string;
    repo: string;
    alertNumber: number;
    secretType: string;
  } {
    const m = /^([^:]+):([^/\s]+)\/([^#\s]+)#(\d+)$/.exec(a.identity.id);
    if (!m)
      throw permanent(
        this.name,
        `identity ${a.identity.id} is not a secret-scanning alert (<secret_type>:<owner>/<repo>#<number>)`,
      );
    return { secretType: m[1]!, owner: m[2]!, repo: m[3]!, alertNumber: Number(m[4]) };
  }

  /** The leaked secret, read from its alert each time it is needed and never kept. */
  private async alertSecret(p: { owner: string; repo: string; alertNumber: number }): Promise<string> {
    const r = await this.http.send(
      'GET',
      `/repos/${seg(p.owner)}/${seg(p.repo)}/secret-scanning/alerts/${p.alertNumber}`,
      { headers: this.headers('token') },
    );
    const secret = (r.body as { secret?: unknown }).secret;
    if (typeof secret !== 'string' || secret === '')
      throw permanent(this.name, `alert ${p.owner}/${p.repo}#${p.alertNumber} does not show its secret`);
    return secret;
  }

  /** Is a GitHub credential still accepted? GET /rate_limit answers 401 for a revoked or unknown one. */
  private async credentialAlive(secret: string): Promise<boolean> {
    const r = await this.http.send('GET', '/rate_limit', {
      headers: this.headers({ bearer: secret }),
      accept: [401],
    });
    return r.status === 200;
  }

  /** The OAuth app still knows the token: POST /applications/{client_id}/token answers 200 (404: revoked). */
  private async oauthTokenAlive(
    clientId: string,
    secret: string,
  ): Promise<{ alive: boolean; user: string | null }> {
    const r = await this.http.send('POST', `/applications/${seg(clientId)}/token`, {
      headers: this.headers(this.appAuth(clientId)),
      json: { access_token: secret },
      accept: [404],
    });
    const user = (r.body as { user?: { login?: string } } | undefined)?.user?.login ?? null;
    return { alive: r.status === 200, user };
  }

  private parseOrgPat(a: ProviderAction): { org: string; patId: number } {
    const m = /^pat:(\d+)$/.exec(a.identity.id);
    const org = (typeof a.args.org === 'string' ? a.args.org : undefined) ?? a.identity.tenant;
    if (!m || !org)
      throw permanent(
        this.name,
        `identity ${a.identity.id} is not pat:<pat_id> with an organization as tenant`,
      );
    return { org, patId: Number(m[1]) };
  }

  private async orgPat(
    org: string,
    patId: number,
  ): Promise<{ token_name: string; owner: { login: string } } | undefined> {
    const r = await this.http.send('GET', `/orgs/${seg(org)}/personal-access-tokens`, {
      headers: this.headers('token'),
      query: { token_id: String(patId), per_page: 100 },
    });
    return (r.body as Array<{ id: number; token_name: string; owner: { login: string } }>).find(
      (g) => g.id === patId,
    );
  }

  private parseDeployKey(a: ProviderAction): { owner: string; repo: string; key: string } {
    const m = /^deploy-key:([^/\s]+)\/([^/\s]+)\/(\d+|SHA256:\S+)$/.exec(a.identity.id);
    if (!m)
      throw permanent(
        this.name,
        `identity ${a.identity.id} is not deploy-key:<owner>/<repo>/<key id | SHA256:…>`,
      );
    return { owner: m[1]!, repo: m[2]!, key: m[3]! };
  }

  private async deployKeys(owner: string, repo: string): Promise<DeployKey[]> {
    const r = await this.http.send('GET', `/repos/${seg(owner)}/${seg(repo)}/keys`, {
      headers: this.headers('token'),
      query: { per_page: 100 },
    });
    return r.body as DeployKey[];
  }

  private async findDeployKey(p: DeployKeyPrior): Promise<DeployKey | undefined> {
    return (await this.deployKeys(p.owner, p.repo)).find((k) => sshFingerprint(k.key) === p.fingerprint);
  }

  // ---------------------------------------------------------------- port

  async capture(a: ProviderAction): Promise<PriorState> {
    this.check(a.action);
    switch (a.action) {
      case 'revoke_tokens': {
        if (/^pat:/.test(a.identity.id)) {
          const { org, patId } = this.parseOrgPat(a);
          const g = await this.orgPat(org, patId);
          if (!g)
            throw permanent(this.name, `organization ${org} has no fine-grained token ${patId}`, {
              status: 404,
            });
          return {
            target: 'org-pat',
            resolvedId: `${org}/pat/${patId}`,
            org,
            patId,
            tokenName: g.token_name,
            owner: g.owner.login,
            present: true,
          } satisfies OrgPatPrior;
        }
        const p = this.parseAlert(a);
        const secret = await this.alertSecret(p);
        return {
          target: 'credential',
          resolvedId: `${p.owner}/${p.repo}#${p.alertNumber}`,
          ...p,
          fingerprint: secretFingerprint(secret),
          activeAtCapture: await this.credentialAlive(secret),
        } satisfies CredentialPrior;
      }
      case 'revoke_oauth_grant': {
        const clientId = typeof a.args.clientId === 'string' ? a.args.clientId : undefined;
        if (!clientId) throw permanent(this.name, 'revoke_oauth_grant needs args.clientId (the OAuth app)');
        const p = this.parseAlert(a);
        const secret = await this.alertSecret(p);
        const { alive, user } = await this.oauthTokenAlive(clientId, secret);
        return {
          target: 'oauth-grant',
          resolvedId: `${clientId}/${user ?? 'unknown-user'}`,
          ...p,
          clientId,
          user,
          fingerprint: secretFingerprint(secret),
          activeAtCapture: alive,
        } satisfies OAuthGrantPrior;
      }
      default: {
        const { owner, repo, key } = this.parseDeployKey(a);
        const k = (await this.deployKeys(owner, repo)).find((d) =>
          key.startsWith('SHA256:') ? sshFingerprint(d.key) === key : d.id === Number(key),
        );
        if (!k) throw permanent(this.name, `${owner}/${repo} has no deploy key ${key}`, { status: 404 });
        return {
          target: 'deploy-key',
          resolvedId: `${owner}/${repo}/${k.id}`,
          owner,
          repo,
          keyId: k.id,
          title: k.title,
          publicKey: k.key,
          readOnly: k.read_only,
          fingerprint: sshFingerprint(k.key),
        } satisfies DeployKeyPrior;
      }
    }
  }

  async apply(_a: ProviderAction, prior: PriorState): Promise<ApplyResult> {
    const p = prior as GitHubPrior;
    const at = new Date(this.now()).toISOString();
    switch (p.target) {
      case 'credential': {
        const secret = await this.matchingSecret(p);
        // Revoking twice is harmless (202 either way), but a dead credential needs no budget.
        if (!(await this.credentialAlive(secret)))
          return { noop: true, appliedAt: at, revoked: p.fingerprint };
        await this.revokeBatch.submit(secret);
        return { noop: false, appliedAt: at, revoked: p.fingerprint };
      }
      case 'oauth-grant': {
        const secret = await this.matchingSecret(p);
        if (!(await this.oauthTokenAlive(p.clientId, secret)).alive) return { noop: true, appliedAt: at };
        await this.http.send('DELETE', `/applications/${seg(p.clientId)}/grant`, {
          headers: this.headers(this.appAuth(p.clientId)),
          json: { access_token: secret },
        });
        return {
          noop: false,
          appliedAt: at,
          grantRevoked: `${p.clientId} for ${p.user ?? 'the token user'}`,
        };
      }
      case 'org-pat': {
        if (!(await this.orgPat(p.org, p.patId))) return { noop: true, appliedAt: at };
        await this.http.send('POST', `/orgs/${seg(p.org)}/personal-access-tokens/${p.patId}`, {
          headers: this.headers('token'),
          json: { action: 'revoke' },
        });
        return { noop: false, appliedAt: at, revokedAccess: `${p.org}: ${p.tokenName} (${p.owner})` };
      }
      case 'deploy-key': {
        const k = await this.findDeployKey(p);
        if (!k) return { noop: true, appliedAt: at };
        await this.http.send('DELETE', `/repos/${seg(p.owner)}/${seg(p.repo)}/keys/${k.id}`, {
          headers: this.headers('token'),
          accept: [404],
        });
        return { noop: false, appliedAt: at, deletedKeyId: k.id };
      }
    }
  }

  /** The alert's secret, refusing when it no longer is the credential captured (the alert was reused). */
  private async matchingSecret(p: CredentialPrior | OAuthGrantPrior): Promise<string> {
    const secret = await this.alertSecret(p);
    if (secretFingerprint(secret) !== p.fingerprint)
      throw permanent(this.name, `alert ${p.resolvedId} now shows another secret than the one captured`);
    return secret;
  }

  async isApplied(_a: ProviderAction, prior: PriorState): Promise<boolean> {
    return (await this.probe(prior as GitHubPrior)).ok;
  }

  async verify(_a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<Probe[]> {
    return [await this.probe(prior as GitHubPrior)];
  }

  private async probe(p: GitHubPrior): Promise<Probe> {
    switch (p.target) {
      case 'credential': {
        const alive = await this.credentialAlive(await this.matchingSecret(p));
        return {
          probe: 'credential refused by GET /rate_limit',
          ok: !alive,
          detail: `${p.secretType} ${p.fingerprint} ${alive ? 'still accepted' : 'refused (401)'}`,
        };
      }
      case 'oauth-grant': {
        const { alive } = await this.oauthTokenAlive(p.clientId, await this.matchingSecret(p));
        return {
          probe: 'OAuth token unknown to its app',
          ok: !alive,
          detail: `${p.clientId}: token ${p.fingerprint} ${alive ? 'still valid' : 'not found (404)'}`,
        };
      }
      case 'org-pat': {
        const present = Boolean(await this.orgPat(p.org, p.patId));
        return {
          probe: 'fine-grained token has no access to the organization',
          ok: !present,
          detail: `${p.org}: token ${p.patId} ${present ? 'still has access' : 'not listed'}`,
        };
      }
      case 'deploy-key': {
        const k = await this.findDeployKey(p);
        return {
          probe: 'deploy key absent',
          ok: !k,
          detail: `${p.owner}/${p.repo}: ${p.fingerprint} ${k ? `present as ${k.id}` : 'absent'}`,
        };
      }
    }
  }

  async revert(a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<RevertResult> {
    const p = prior as GitHubPrior;
    if (p.target !== 'deploy-key') {
      throw new RollbackRefusedError({
        provider: this.name,
        action: a.action,
        reason: GITHUB_ACTIONS[a.action]!.residue.join('; '),
      });
    }
    const existing = await this.findDeployKey(p);
    const key =
      existing ??
      ((
        await this.http.send('POST', `/repos/${seg(p.owner)}/${seg(p.repo)}/keys`, {
          headers: this.headers('token'),
          json: { title: p.title, key: p.publicKey, read_only: p.readOnly },
        })
      ).body as DeployKey);
    return {
      restored: [
        `deploy key ${p.fingerprint} (${p.title}, ${p.readOnly ? 'read-only' : 'read-write'}) on ${p.owner}/${p.repo}`,
      ],
      residue: [
        `the deploy key came back as id ${key.id} (was ${p.keyId})`,
        GITHUB_ACTIONS.disable_service_account!.residue[1]!,
      ],
    };
  }

  /**
   * The verdict goes back to secret scanning: the alert is resolved as `revoked` (malicious) or
   * `false_positive` (benign). Identities that are not alerts have no detector to tell.
   */
  async feedback(identity: IdentityRef, verdict: Verdict, ctx: { caseId: string }): Promise<FeedbackCall[]> {
    const m = /^([^:]+):([^/\s]+)\/([^#\s]+)#(\d+)$/.exec(identity.id);
    if (!m) return [];
    const resolution = verdict === 'malicious' ? 'revoked' : 'false_positive';
    const call = `PATCH /repos/${m[2]}/${m[3]}/secret-scanning/alerts/${m[4]} resolution=${resolution}`;
    try {
      await this.http.send('PATCH', `/repos/${seg(m[2]!)}/${seg(m[3]!)}/secret-scanning/alerts/${m[4]}`, {
        headers: this.headers('token'),
        json: {
          state: 'resolved',
          resolution,
          resolution_comment: `Tourniquet case ${ctx.caseId}: verdict ${verdict}`,
        },
      });
      return [{ call, ok: true, detail: `alert resolved as ${resolution}` }];
    } catch (e) {
      return [{ call, ok: false, detail: (e as Error).message }];
    }
  }

  private check(action: ActionType): void {
    if (!this.supports(action)) throw permanent(this.name, `GitHub has no ${action}`);
  }
}

/** GitHub's primary rate limit: x-ratelimit-reset (epoch seconds) once x-ratelimit-remaining is 0. */
function rateLimitReset(h: Record<string, string | undefined>, nowMs: number): number | undefined {
  if (h['x-ratelimit-remaining'] !== '0' || !h['x-ratelimit-reset']) return undefined;
  return Math.max(0, Number(h['x-ratelimit-reset']) * 1000 - nowMs);
}

export const githubProvider: ProviderDefinition<z.output<typeof GitHubConfigSchema>> = {
  name: 'github',
  configSchema: GitHubConfigSchema as unknown as z.ZodType<z.output<typeof GitHubConfigSchema>>,
  create: (config, deps) => new GitHubProvider(config, deps),
  actions: GITHUB_ACTIONS,
};
