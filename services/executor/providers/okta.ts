import { z } from 'zod';
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
import { refuseIrreversibleRollback } from './refuse.ts';
import { requireSecret } from './secrets.ts';
import { permanent, VendorHttp } from './vendor-http.ts';

/**
 * Okta (Management API v1, OAuth for Universal Logout) through plain HTTP with an API token
 * (`Authorization: SSWS <token>`).
 *
 * Identity mapping: a human, given by Okta id, login or email; resolved once to the Okta user id
 * (GET /api/v1/users/{id|login}) and recorded as prior.resolvedId.
 * Actions:
 * - revoke_sessions: DELETE /users/{id}/sessions?oauthTokens=true (every Okta session and the OAuth
 *   refresh/access tokens issued to the user), and with `universalLogout: true` also Global Token
 *   Revocation (POST /oauth2/v1/global-token-revocation), so apps that support Universal Logout end theirs.
 *   Proven by the System Log's `user.session.clear` for the user since capture.
 * - revoke_tokens: DELETE /users/{id}/clients/{clientId}/tokens for `args.clientId`, or for every app
 *   the user holds tokens for.
 * - revoke_oauth_grant: DELETE /users/{id}/clients/{clientId}/grants (args.clientId required).
 * - disable_account: suspend (POST …/lifecycle/suspend), rolled back with unsuspend.
 * - force_step_up: expire the password (POST …/lifecycle/expire_password): a new one at next sign-in.
 * - rotate_credential: reset every enrolled factor (POST …/lifecycle/reset_factors).
 * Feedback: the user's risk (PUT /users/{id}/risk): HIGH for a malicious verdict, LOW for benign.
 */
const TOKENS =
  'access tokens Okta already issued stay valid at resource servers that check them locally until they expire (Okta default 1 h)';

const OKTA_ACTIONS: Partial<Record<ActionType, ActionCapability>> = {
  revoke_sessions: {
    reversibility: 'partially',
    residue: [
      'ended sessions are not restored: the user signs in again',
      "remembered devices are forgotten (Identity Engine's default for this call): the user passes MFA again on each",
      TOKENS,
    ],
  },
  revoke_tokens: {
    reversibility: 'partially',
    residue: ['revoked refresh tokens are not restored: the apps sign the user in again', TOKENS],
  },
  revoke_oauth_grant: {
    reversibility: 'irreversible',
    residue: ['a revoked consent cannot be restored by an administrator: the user consents to the app again'],
  },
  disable_account: { reversibility: 'reversible', residue: [] },
  force_step_up: {
    reversibility: 'irreversible',
    residue: ['Okta cannot un-expire a password: the user sets a new one at next sign-in'],
  },
  rotate_credential: {
    reversibility: 'irreversible',
    residue: ['reset factors cannot be restored: the user enrols every factor again'],
  },
};

export const OktaConfigSchema = z
  .object({
    /** The org URL, e.g. https://acme.okta.com */
    baseUrl: z.url(),
    apiToken: z.string().min(1).optional(),
    apiTokenFile: z.string().min(1).optional(),
    apiTokenEnv: z.string().min(1).optional(),
    /** The tenant has Universal Logout: revoke_sessions also calls Global Token Revocation. */
    universalLogout: z.boolean().default(false),
    /**
     * The System Log is written a few seconds after the call: verification reads it up to this many
     * times, this far apart, before saying the session clear is missing.
     */
    systemLogPolls: z.number().int().min(1).max(60).default(10),
    systemLogPollMs: z.number().int().min(10).max(10_000).default(1000),
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
  })
  .strict();
export type OktaConfig = z.output<typeof OktaConfigSchema>;

interface OktaUser {
  id: string;
  status: string;
  profile?: { login?: string; email?: string };
}

export type OktaPrior = {
  resolvedId: string;
  login: string | null;
  status: string;
  capturedAt: string;
  /** Per app: the ids of the user's ACTIVE refresh tokens (revoke_sessions / revoke_tokens). */
  tokens?: Record<string, string[]>;
  /** The user's ACTIVE consent grants for args.clientId (revoke_oauth_grant). */
  grants?: string[];
  clientId?: string;
  /** Enrolled factor types (rotate_credential). */
  factors?: string[];
};

const seg = encodeURIComponent;

export class OktaProvider implements IdentityProvider {
  readonly name: string;
  private readonly http: VendorHttp;
  private readonly token: string;
  private readonly cfg: OktaConfig;
  private readonly now: () => number;

  constructor(cfg: OktaConfig, deps: Pick<ProviderDeps, 'now'> & { name?: string }) {
    this.name = deps.name ?? 'okta';
    this.cfg = cfg;
    this.now = deps.now;
    this.token = requireSecret(
      { value: cfg.apiToken, file: cfg.apiTokenFile, env: cfg.apiTokenEnv },
      `${this.name} apiToken`,
    );
    this.http = new VendorHttp({
      provider: this.name,
      baseUrl: cfg.baseUrl,
      timeoutMs: cfg.timeoutMs,
      now: deps.now,
      describeError: (b) =>
        b && typeof b === 'object' && 'errorSummary' in b
          ? `${String((b as { errorCode?: string }).errorCode ?? '')} ${String(b.errorSummary)}`.trim()
          : undefined,
      // Okta answers 429 with X-Rate-Limit-Reset (epoch seconds) rather than Retry-After.
      rateLimitWaitMs: (h, nowMs) =>
        h['x-rate-limit-reset'] ? Math.max(0, Number(h['x-rate-limit-reset']) * 1000 - nowMs) : undefined,
    });
  }

  supports(action: ActionType): boolean {
    return action in OKTA_ACTIONS;
  }

  private send(method: string, path: string, req: Parameters<VendorHttp['send']>[2] = {}) {
    return this.http.send(method, path, {
      ...req,
      headers: { authorization: `SSWS ${this.token}`, ...(req.headers ?? {}) },
    });
  }

  private async user(idOrLogin: string): Promise<OktaUser> {
    return (await this.send('GET', `/api/v1/users/${seg(idOrLogin)}`)).body as OktaUser;
  }

  private async clientsOf(userId: string): Promise<string[]> {
    const r = await this.send('GET', `/api/v1/users/${seg(userId)}/clients`);
    return (r.body as Array<{ client_id: string }>).map((c) => c.client_id);
  }

  private async activeTokens(userId: string, clientId: string): Promise<string[]> {
    const r = await this.send('GET', `/api/v1/users/${seg(userId)}/clients/${seg(clientId)}/tokens`, {
      query: { limit: 200 },
    });
    return (r.body as Array<{ id: string; status: string }>)
      .filter((t) => t.status === 'ACTIVE')
      .map((t) => t.id);
  }

  private async activeGrants(userId: string, clientId: string): Promise<string[]> {
    const r = await this.send('GET', `/api/v1/users/${seg(userId)}/clients/${seg(clientId)}/grants`, {
      query: { limit: 200 },
    });
    return (r.body as Array<{ id: string; status: string }>)
      .filter((g) => g.status === 'ACTIVE')
      .map((g) => g.id);
  }

  /** Every app's ACTIVE refresh tokens, or only args.clientId's. */
  private async tokenMap(userId: string, clientId: string | undefined): Promise<Record<string, string[]>> {
    const clients = clientId ? [clientId] : await this.clientsOf(userId);
    const out: Record<string, string[]> = {};
    for (const c of clients) out[c] = await this.activeTokens(userId, c);
    return out;
  }

  /** Did Okta record a session clear for the user since capture? (System Log, the audit of record.) */
  private async sessionsCleared(p: OktaPrior): Promise<boolean> {
    const r = await this.send('GET', '/api/v1/logs', {
      query: {
        since: p.capturedAt,
        filter: `eventType eq "user.session.clear" and target.id eq "${p.resolvedId}"`,
        limit: 10,
      },
    });
    return (r.body as unknown[]).length > 0;
  }

  private clientIdOf(a: ProviderAction, required: boolean): string | undefined {
    const c = typeof a.args.clientId === 'string' && a.args.clientId !== '' ? a.args.clientId : undefined;
    if (required && !c) throw permanent(this.name, `${a.action} needs args.clientId (the OAuth app)`);
    return c;
  }

  async capture(a: ProviderAction): Promise<PriorState> {
    if (!this.supports(a.action)) throw permanent(this.name, `Okta has no ${a.action}`);
    const u = await this.user(a.identity.id);
    const prior: OktaPrior = {
      resolvedId: u.id,
      login: u.profile?.login ?? null,
      status: u.status,
      // A second earlier than now: the System Log's `since` is inclusive and its clock is Okta's.
      capturedAt: new Date(this.now() - 1000).toISOString(),
    };
    switch (a.action) {
      case 'revoke_sessions':
      case 'revoke_tokens':
        prior.tokens = await this.tokenMap(
          u.id,
          a.action === 'revoke_tokens' ? this.clientIdOf(a, false) : undefined,
        );
        break;
      case 'revoke_oauth_grant': {
        const clientId = this.clientIdOf(a, true)!;
        prior.clientId = clientId;
        prior.grants = await this.activeGrants(u.id, clientId);
        break;
      }
      case 'rotate_credential': {
        const r = await this.send('GET', `/api/v1/users/${seg(u.id)}/factors`);
        prior.factors = (r.body as Array<{ factorType: string; status: string }>)
          .filter((f) => f.status === 'ACTIVE')
          .map((f) => f.factorType);
        break;
      }
    }
    return prior;
  }

  async apply(a: ProviderAction, prior: PriorState): Promise<ApplyResult> {
    const p = prior as OktaPrior;
    const id = seg(p.resolvedId);
    const appliedAt = new Date(this.now()).toISOString();
    if (await this.applied(a.action, p)) return { noop: true, appliedAt };
    switch (a.action) {
      case 'revoke_sessions':
        await this.send('DELETE', `/api/v1/users/${id}/sessions`, { query: { oauthTokens: true } });
        if (this.cfg.universalLogout)
          await this.send('POST', '/oauth2/v1/global-token-revocation', {
            json: { sub_id: { format: 'opaque', id: p.resolvedId } },
          });
        return { noop: false, appliedAt, universalLogout: this.cfg.universalLogout };
      case 'revoke_tokens':
        for (const clientId of Object.keys(p.tokens ?? {}))
          await this.send('DELETE', `/api/v1/users/${id}/clients/${seg(clientId)}/tokens`);
        return { noop: false, appliedAt, clients: Object.keys(p.tokens ?? {}) };
      case 'revoke_oauth_grant':
        await this.send('DELETE', `/api/v1/users/${id}/clients/${seg(p.clientId!)}/grants`);
        return { noop: false, appliedAt, grantsRevoked: p.grants?.length ?? 0 };
      case 'disable_account':
        await this.send('POST', `/api/v1/users/${id}/lifecycle/suspend`);
        return { noop: false, appliedAt };
      case 'force_step_up':
        await this.send('POST', `/api/v1/users/${id}/lifecycle/expire_password`);
        return { noop: false, appliedAt };
      default:
        await this.send('POST', `/api/v1/users/${id}/lifecycle/reset_factors`);
        return { noop: false, appliedAt, factorsReset: p.factors ?? [] };
    }
  }

  /** Whether the effect is in place, read from Okta (never from what this instance remembers). */
  private async applied(action: ActionType, p: OktaPrior): Promise<boolean> {
    switch (action) {
      case 'revoke_sessions':
        return this.sessionsCleared(p);
      case 'revoke_tokens': {
        for (const [clientId, ids] of Object.entries(p.tokens ?? {})) {
          const active = new Set(await this.activeTokens(p.resolvedId, clientId));
          if (ids.some((t) => active.has(t))) return false;
        }
        return true;
      }
      case 'revoke_oauth_grant': {
        const active = new Set(await this.activeGrants(p.resolvedId, p.clientId!));
        return !(p.grants ?? []).some((g) => active.has(g));
      }
      case 'disable_account':
        return (await this.user(p.resolvedId)).status === 'SUSPENDED';
      case 'force_step_up':
        return (await this.user(p.resolvedId)).status === 'PASSWORD_EXPIRED';
      default: {
        const r = await this.send('GET', `/api/v1/users/${seg(p.resolvedId)}/factors`);
        return !(r.body as Array<{ status: string }>).some((f) => f.status === 'ACTIVE');
      }
    }
  }

  async isApplied(a: ProviderAction, prior: PriorState): Promise<boolean> {
    return this.applied(a.action, prior as OktaPrior);
  }

  async verify(a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<Probe[]> {
    const p = prior as OktaPrior;
    const probes: Probe[] = [];
    let ok = await this.applied(a.action, p);
    for (let i = 1; !ok && a.action === 'revoke_sessions' && i < this.cfg.systemLogPolls; i++) {
      await new Promise((r) => setTimeout(r, this.cfg.systemLogPollMs));
      ok = await this.applied(a.action, p);
    }
    const what: Record<string, [string, string, string]> = {
      revoke_sessions: [
        'sessions cleared',
        'System Log has user.session.clear since capture',
        'no session clear in the System Log since capture',
      ],
      revoke_tokens: [
        'refresh tokens revoked',
        'none of the captured refresh tokens is ACTIVE',
        'a captured refresh token is still ACTIVE',
      ],
      revoke_oauth_grant: [
        'consent revoked',
        'none of the captured grants is ACTIVE',
        'a captured grant is still ACTIVE',
      ],
      disable_account: ['user suspended', 'status SUSPENDED', 'status is not SUSPENDED'],
      force_step_up: ['password expired', 'status PASSWORD_EXPIRED', 'status is not PASSWORD_EXPIRED'],
      rotate_credential: ['factors reset', 'no ACTIVE factor', 'an ACTIVE factor remains'],
    };
    const [probe, yes, no] = what[a.action]!;
    probes.push({ probe, ok, detail: `${p.login ?? p.resolvedId}: ${ok ? yes : no}` });
    if (a.action === 'revoke_sessions' && p.tokens && Object.values(p.tokens).some((t) => t.length > 0)) {
      const tokensGone = await this.applied('revoke_tokens', p);
      probes.push({
        probe: 'refresh tokens revoked (oauthTokens=true)',
        ok: tokensGone,
        detail: tokensGone
          ? 'no captured refresh token is ACTIVE'
          : 'a captured refresh token is still ACTIVE',
      });
    }
    return probes;
  }

  async revert(a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<RevertResult> {
    const p = prior as OktaPrior;
    refuseIrreversibleRollback(this.name, a.action, OKTA_ACTIONS);
    const cap = OKTA_ACTIONS[a.action]!;
    if (a.action === 'disable_account') {
      // Only unsuspend what we suspended: a user suspended before the action stays suspended.
      if (p.status === 'ACTIVE' && (await this.user(p.resolvedId)).status === 'SUSPENDED')
        await this.send('POST', `/api/v1/users/${seg(p.resolvedId)}/lifecycle/unsuspend`);
      return { restored: [`${p.login ?? p.resolvedId}: status ${p.status}`], residue: [] };
    }
    return {
      restored: [`${p.login ?? p.resolvedId}: nothing was disabled; the user can sign in again`],
      residue: cap.residue,
    };
  }

  async feedback(identity: IdentityRef, verdict: Verdict, ctx: { caseId: string }): Promise<FeedbackCall[]> {
    const riskLevel = verdict === 'malicious' ? 'HIGH' : 'LOW';
    const call = `PUT /api/v1/users/{id}/risk riskLevel=${riskLevel}`;
    try {
      const u = await this.user(identity.id);
      await this.send('PUT', `/api/v1/users/${seg(u.id)}/risk`, {
        json: {
          riskLevel,
          riskReason: `Tourniquet case ${ctx.caseId} verdict ${verdict}`.replace(/[^a-zA-Z0-9\s\-,.]/g, ' '),
        },
      });
      return [{ call, ok: true, detail: `${u.profile?.login ?? u.id}: risk ${riskLevel}` }];
    } catch (e) {
      return [{ call, ok: false, detail: (e as Error).message }];
    }
  }
}

export const oktaProvider: ProviderDefinition<OktaConfig> = {
  name: 'okta',
  configSchema: OktaConfigSchema as unknown as z.ZodType<OktaConfig>,
  create: (config, deps) => new OktaProvider(config, deps),
  actions: OKTA_ACTIONS,
};
