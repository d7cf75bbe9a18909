import { z } from 'zod';
import { ProviderError } from '../../../platform/errors.ts';
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
import { effectProbe, refuseIrreversibleRollback } from './refuse.ts';
import { requireSecret } from './secrets.ts';
import { Batcher, permanent, VendorHttp } from './vendor-http.ts';

/**
 * Microsoft Entra ID through Microsoft Graph v1.0 (plain HTTP), authenticated as an app with the
 * client-credentials grant against a configurable token endpoint.
 *
 * Identity mapping: a human is a user, given by object id or userPrincipalName; a service_account,
 * workload or oauth_app is a service principal, given by its appId (application/client id) or object id.
 * Resolved once to the object id (prior.resolvedId).
 * Actions:
 * - revoke_sessions (user): POST /users/{id}/revokeSignInSessions; proven by signInSessionsValidFromDateTime
 *   moving past the value captured.
 * - disable_account (user) / disable_service_account (service principal): PATCH accountEnabled=false;
 *   rollback sets it back to what it was.
 * - rotate_credential: a user's password is reset (POST …/authentication/methods/{password method}/resetPassword,
 *   a long-running operation: 202 + Location, polled until it succeeds; the temporary password Graph
 *   returns is never kept); a service principal's client secret `args.keyId` (or its only one) is removed
 *   (removePassword), a certificate with `args.keyId` + `args.proof` (removeKey).
 * Feedback: riskyUsers confirmCompromised (malicious) / dismiss (benign), batched up to 60 users a call.
 */
const ACCESS_TOKENS =
  'access tokens already issued stay valid until they expire (Entra ID default 60-90 min; apps with continuous access evaluation end them sooner)';

const ENTRA_ACTIONS: Partial<Record<ActionType, ActionCapability>> = {
  revoke_sessions: {
    reversibility: 'partially',
    residue: ['revoked sessions and refresh tokens are not restored: the user signs in again', ACCESS_TOKENS],
  },
  disable_account: { reversibility: 'reversible', residue: [] },
  disable_service_account: { reversibility: 'reversible', residue: [] },
  rotate_credential: {
    reversibility: 'irreversible',
    residue: [
      'a reset password cannot be restored: the user gets a temporary one from the helpdesk (Tourniquet does not keep it)',
      "a removed client secret or certificate cannot be restored: the app's owners add a new credential and update its consumers",
    ],
  },
};

/** The well-known id of every user's password authentication method (Graph). */
const PASSWORD_METHOD_ID = '28c10230-6103-485e-b985-444c60001490';

export const EntraConfigSchema = z
  .object({
    tenantId: z.string().min(1),
    clientId: z.string().min(1),
    clientSecret: z.string().min(1).optional(),
    clientSecretFile: z.string().min(1).optional(),
    clientSecretEnv: z.string().min(1).optional(),
    /** Graph's root (default https://graph.microsoft.com/v1.0). */
    baseUrl: z.url().default('https://graph.microsoft.com/v1.0'),
    /** Default https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token. */
    tokenUrl: z.url().optional(),
    /** Polls of a password reset's operation before giving up (retriable), and the pause between them. */
    resetPolls: z.number().int().min(1).max(600).default(30),
    resetPollMs: z.number().int().min(10).max(60_000).default(1000),
    feedbackBatchWindowMs: z.number().int().min(0).max(60_000).default(200),
    timeoutMs: z.number().int().min(100).max(300_000).default(10_000),
  })
  .strict();
export type EntraConfig = z.output<typeof EntraConfigSchema>;

interface GraphUser {
  id: string;
  userPrincipalName: string | null;
  accountEnabled: boolean | null;
  signInSessionsValidFromDateTime: string | null;
  lastPasswordChangeDateTime: string | null;
}
interface GraphSp {
  id: string;
  appId: string | null;
  displayName: string | null;
  accountEnabled: boolean | null;
  passwordCredentials: Array<{ keyId: string | null; displayName: string | null }>;
  keyCredentials: Array<{ keyId: string | null; displayName: string | null }>;
}

export type EntraPrior = {
  kind: 'user' | 'servicePrincipal';
  resolvedId: string;
  label: string;
  accountEnabled: boolean;
  capturedAt: string;
  /**
   * Graph's own timestamps at capture (users): the effect is proven by Graph moving them, never by
   * comparing Graph's clock with ours.
   */
  sessionsValidFrom?: string | null;
  passwordChanged?: string | null;
  credential?: { keyId: string; type: 'password' | 'key' };
};

const USER_FIELDS =
  'id,userPrincipalName,accountEnabled,signInSessionsValidFromDateTime,lastPasswordChangeDateTime';
const SP_FIELDS = 'id,appId,displayName,accountEnabled,passwordCredentials,keyCredentials';
const seg = encodeURIComponent;

export class EntraProvider implements IdentityProvider {
  readonly name: string;
  private readonly http: VendorHttp;
  private readonly cfg: EntraConfig;
  private readonly secret: string;
  private readonly now: () => number;
  private token: { value: string; expiresAt: number } | null = null;
  private readonly riskBatches: Record<'confirmCompromised' | 'dismiss', Batcher<string>>;

  constructor(cfg: EntraConfig, deps: Pick<ProviderDeps, 'now'> & { name?: string }) {
    this.name = deps.name ?? 'entra';
    this.cfg = cfg;
    this.now = deps.now;
    this.secret = requireSecret(
      { value: cfg.clientSecret, file: cfg.clientSecretFile, env: cfg.clientSecretEnv },
      `${this.name} clientSecret`,
    );
    this.http = new VendorHttp({
      provider: this.name,
      baseUrl: cfg.baseUrl,
      timeoutMs: cfg.timeoutMs,
      now: deps.now,
      describeError: (b) => {
        const e = (b as { error?: { code?: string; message?: string } | string; error_description?: string })
          ?.error;
        if (typeof e === 'string')
          return `${e} ${(b as { error_description?: string }).error_description ?? ''}`.trim();
        return e ? `${e.code ?? ''} ${e.message ?? ''}`.trim() : undefined;
      },
    });
    const batch = (op: 'confirmCompromised' | 'dismiss') =>
      new Batcher<string>({
        windowMs: cfg.feedbackBatchWindowMs,
        max: 60,
        flush: async (userIds) => {
          await this.send('POST', `/identityProtection/riskyUsers/${op}`, {
            json: { userIds: [...new Set(userIds)] },
          });
        },
      });
    this.riskBatches = { confirmCompromised: batch('confirmCompromised'), dismiss: batch('dismiss') };
  }

  supports(action: ActionType): boolean {
    return action in ENTRA_ACTIONS;
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt > this.now() + 60_000) return this.token.value;
    const url =
      this.cfg.tokenUrl ?? `https://login.microsoftonline.com/${seg(this.cfg.tenantId)}/oauth2/v2.0/token`;
    const r = await this.http.send('POST', url, {
      form: {
        grant_type: 'client_credentials',
        client_id: this.cfg.clientId,
        client_secret: this.secret,
        scope: 'https://graph.microsoft.com/.default',
      },
    });
    const b = r.body as { access_token?: string; expires_in?: number };
    if (!b.access_token) throw permanent(this.name, 'the token endpoint answered without an access_token');
    this.token = { value: b.access_token, expiresAt: this.now() + (b.expires_in ?? 3600) * 1000 };
    return b.access_token;
  }

  private async send(method: string, path: string, req: Parameters<VendorHttp['send']>[2] = {}) {
    const token = await this.accessToken();
    try {
      return await this.http.send(method, path, {
        ...req,
        headers: { authorization: `Bearer ${token}`, ...(req.headers ?? {}) },
      });
    } catch (e) {
      // An expired or revoked app token: fetch a new one on the next call.
      if (e instanceof ProviderError && e.details?.status === 401) this.token = null;
      throw e;
    }
  }

  private async getUser(id: string): Promise<GraphUser> {
    return (await this.send('GET', `/users/${seg(id)}`, { query: { $select: USER_FIELDS } }))
      .body as GraphUser;
  }

  private async getSp(id: string): Promise<GraphSp> {
    return (await this.send('GET', `/servicePrincipals/${seg(id)}`, { query: { $select: SP_FIELDS } }))
      .body as GraphSp;
  }

  private async resolveSp(idOrAppId: string): Promise<GraphSp> {
    if (/^[0-9a-f-]{36}$/i.test(idOrAppId)) {
      const r = await this.send('GET', '/servicePrincipals', {
        query: { $filter: `appId eq '${idOrAppId}'`, $select: SP_FIELDS },
      });
      const found = (r.body as { value: GraphSp[] }).value[0];
      if (found) return found;
    }
    return this.getSp(idOrAppId);
  }

  async capture(a: ProviderAction): Promise<PriorState> {
    if (!this.supports(a.action)) throw permanent(this.name, `Entra ID has no ${a.action}`);
    const capturedAt = new Date(this.now()).toISOString();
    if (a.identity.type === 'human') {
      if (a.action === 'disable_service_account')
        throw permanent(this.name, 'disable_service_account needs a service principal, not a user');
      const u = await this.getUser(a.identity.id);
      return {
        kind: 'user',
        resolvedId: u.id,
        label: u.userPrincipalName ?? u.id,
        accountEnabled: u.accountEnabled !== false,
        capturedAt,
        sessionsValidFrom: u.signInSessionsValidFromDateTime,
        passwordChanged: u.lastPasswordChangeDateTime,
      } satisfies EntraPrior;
    }
    if (a.action === 'revoke_sessions' || a.action === 'disable_account')
      throw permanent(this.name, `${a.action} acts on users; ${a.identity.id} is a ${a.identity.type}`);
    const sp = await this.resolveSp(a.identity.id);
    const prior: EntraPrior = {
      kind: 'servicePrincipal',
      resolvedId: sp.id,
      label: sp.displayName ?? sp.appId ?? sp.id,
      accountEnabled: sp.accountEnabled !== false,
      capturedAt,
    };
    if (a.action === 'rotate_credential') prior.credential = this.pickCredential(a, sp);
    return prior;
  }

  private pickCredential(a: ProviderAction, sp: GraphSp): { keyId: string; type: 'password' | 'key' } {
    const keyId = typeof a.args.keyId === 'string' ? a.args.keyId : undefined;
    if (keyId) {
      if (sp.passwordCredentials.some((c) => c.keyId === keyId)) return { keyId, type: 'password' };
      if (sp.keyCredentials.some((c) => c.keyId === keyId)) {
        if (typeof a.args.proof !== 'string')
          throw permanent(
            this.name,
            `certificate ${keyId} can only be removed with args.proof (a JWT signed by one of the app's keys)`,
          );
        return { keyId, type: 'key' };
      }
      throw permanent(this.name, `${sp.displayName ?? sp.id} has no credential ${keyId}`);
    }
    if (sp.passwordCredentials.length === 1 && sp.passwordCredentials[0]!.keyId)
      return { keyId: sp.passwordCredentials[0]!.keyId, type: 'password' };
    throw permanent(
      this.name,
      `${sp.displayName ?? sp.id} has ${sp.passwordCredentials.length} client secrets: name the leaked one in args.keyId`,
    );
  }

  async apply(a: ProviderAction, prior: PriorState): Promise<ApplyResult> {
    const p = prior as EntraPrior;
    const appliedAt = new Date(this.now()).toISOString();
    if (await this.applied(a.action, p)) return { noop: true, appliedAt };
    const base =
      p.kind === 'user' ? `/users/${seg(p.resolvedId)}` : `/servicePrincipals/${seg(p.resolvedId)}`;
    switch (a.action) {
      case 'revoke_sessions':
        await this.send('POST', `${base}/revokeSignInSessions`);
        return { noop: false, appliedAt };
      case 'disable_account':
      case 'disable_service_account':
        await this.send('PATCH', base, { json: { accountEnabled: false } });
        return { noop: false, appliedAt };
      default:
        if (p.kind === 'user') return { noop: false, appliedAt, ...(await this.resetPassword(p)) };
        if (p.credential!.type === 'password')
          await this.send('POST', `${base}/removePassword`, { json: { keyId: p.credential!.keyId } });
        else
          await this.send('POST', `${base}/removeKey`, {
            json: { keyId: p.credential!.keyId, proof: a.args.proof },
          });
        return { noop: false, appliedAt, removed: p.credential!.keyId };
    }
  }

  /** resetPassword is a long-running operation: 202 with a Location to poll until it has succeeded. */
  private async resetPassword(p: EntraPrior): Promise<Record<string, unknown>> {
    const r = await this.send(
      'POST',
      `/users/${seg(p.resolvedId)}/authentication/methods/${PASSWORD_METHOD_ID}/resetPassword`,
      { json: {} },
    );
    // A 200 answers at once (with the temporary password, which is dropped here on purpose).
    if (r.status !== 202) return { operation: 'completed' };
    const location = r.headers.location;
    if (!location) throw permanent(this.name, 'resetPassword answered 202 without a Location to poll');
    for (let i = 0; i < this.cfg.resetPolls; i++) {
      const op = (await this.send('GET', location)).body as {
        id?: string;
        status?: string;
        statusDetail?: string | null;
      };
      if (op.status === 'succeeded') return { operation: op.id ?? location, polls: i + 1 };
      if (op.status === 'failed')
        throw permanent(this.name, `password reset failed: ${op.statusDetail ?? 'no detail'}`);
      await new Promise((res) => setTimeout(res, this.cfg.resetPollMs));
    }
    throw new ProviderError(
      `${this.name}: the password reset is still running after ${this.cfg.resetPolls} polls`,
      {
        retriable: true,
        provider: this.name,
        details: { operation: location },
      },
    );
  }

  private async applied(action: ActionType, p: EntraPrior): Promise<boolean> {
    if (p.kind === 'user') {
      const u = await this.getUser(p.resolvedId);
      if (action === 'disable_account') return u.accountEnabled === false;
      // Graph moved its own timestamp past the one captured (no comparison of its clock with ours).
      const [now, before] =
        action === 'revoke_sessions'
          ? [u.signInSessionsValidFromDateTime, p.sessionsValidFrom]
          : [u.lastPasswordChangeDateTime, p.passwordChanged];
      return (
        now !== null && (before === null || before === undefined || Date.parse(now) > Date.parse(before))
      );
    }
    const sp = await this.getSp(p.resolvedId);
    if (action === 'disable_service_account') return sp.accountEnabled === false;
    const list = p.credential!.type === 'password' ? sp.passwordCredentials : sp.keyCredentials;
    return !list.some((c) => c.keyId === p.credential!.keyId);
  }

  async isApplied(a: ProviderAction, prior: PriorState): Promise<boolean> {
    return this.applied(a.action, prior as EntraPrior);
  }

  async verify(a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<Probe[]> {
    const p = prior as EntraPrior;
    const ok = await this.applied(a.action, p);
    const probe: Record<string, string> = {
      revoke_sessions: 'signInSessionsValidFromDateTime moved past the captured value',
      disable_account: 'accountEnabled false',
      disable_service_account: 'accountEnabled false',
      rotate_credential:
        p.kind === 'user'
          ? 'lastPasswordChangeDateTime moved past the captured value'
          : `credential ${p.credential?.keyId} absent`,
    };
    return effectProbe(probe[a.action]!, p.label, ok);
  }

  async revert(a: ProviderAction, prior: PriorState, _result?: ApplyResult): Promise<RevertResult> {
    const p = prior as EntraPrior;
    refuseIrreversibleRollback(this.name, a.action, ENTRA_ACTIONS);
    const cap = ENTRA_ACTIONS[a.action]!;
    if (a.action === 'revoke_sessions')
      return {
        restored: [`${p.label}: nothing was disabled; the user can sign in again`],
        residue: cap.residue,
      };
    const base =
      p.kind === 'user' ? `/users/${seg(p.resolvedId)}` : `/servicePrincipals/${seg(p.resolvedId)}`;
    // Only re-enable what was enabled before the action.
    if (p.accountEnabled) await this.send('PATCH', base, { json: { accountEnabled: true } });
    return { restored: [`${p.label}: accountEnabled ${p.accountEnabled}`], residue: [] };
  }

  async feedback(identity: IdentityRef, verdict: Verdict, _ctx: { caseId: string }): Promise<FeedbackCall[]> {
    const op = verdict === 'malicious' ? 'confirmCompromised' : 'dismiss';
    const call = `POST /identityProtection/riskyUsers/${op}`;
    if (identity.type !== 'human') return [];
    try {
      const u = await this.getUser(identity.id);
      await this.riskBatches[op].submit(u.id);
      return [
        {
          call,
          ok: true,
          detail: `${u.userPrincipalName ?? u.id}: ${op === 'dismiss' ? 'risk dismissed (final: Entra cannot un-dismiss)' : 'confirmed compromised (risk high)'}`,
        },
      ];
    } catch (e) {
      return [{ call, ok: false, detail: (e as Error).message }];
    }
  }
}

export const entraProvider: ProviderDefinition<EntraConfig> = {
  name: 'entra',
  configSchema: EntraConfigSchema as unknown as z.ZodType<EntraConfig>,
  create: (config, deps) => new EntraProvider(config, deps),
  actions: ENTRA_ACTIONS,
};
