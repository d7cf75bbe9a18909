import { createHash } from 'node:crypto';
import { type Dispatcher, request } from 'undici';
import { z } from 'zod';
import { ProviderError, parseRetryAfter, RollbackRefusedError } from '../../../platform/errors.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import { ACTION_TYPES, type ActionType } from '../../../schemas/events.ts';
import type {
  ActionCapability,
  ApplyResult,
  IdentityProvider,
  PriorState,
  Probe,
  ProviderAction,
  ProviderDefinition,
  RevertResult,
} from './port.ts';
import { readSecret } from './secrets.ts';

/**
 * Keycloak (26.x) through its Admin REST API.
 *
 * Identity mapping: `identity.tenant` is the target realm (or `defaultRealm`). A `human` is a user, found
 * by id or by exact username. Every other type (service_account, workload, oauth_app, api_key) is a
 * client, found by clientId (or internal id), together with its service-account user when it has one.
 *
 * Idempotency: every apply reads Keycloak's real state first and does nothing when the effect is already
 * there. Revocations are recognised by the not-before timestamp Keycloak advances on logout (user) or that
 * we set (client); secret rotations by the secret's fingerprint changing since capture, and by the action
 * id recorded on the client as attribute `tourniquet.lastAction`, so the same action never rotates twice.
 * No secret is ever placed in prior state or results: only a fingerprint.
 */
export interface KeycloakConfig {
  /** e.g. http://127.0.0.1:18080 */
  baseUrl: string;
  /** Realm the admin credentials live in (default master). */
  adminRealm?: string;
  /** Client used to obtain the admin token (default admin-cli). */
  clientId?: string;
  /** With clientSecret and no username: client_credentials grant (a service account with realm-management roles). */
  clientSecret?: string;
  /** With password: password grant on adminRealm. */
  username?: string;
  password?: string;
  /** Realm for identities that carry no tenant. */
  defaultRealm?: string;
  /** Per-request timeout (default 10s). */
  timeoutMs?: number;
  /** Provider name as recorded in events (default keycloak). */
  name?: string;
  dispatcher?: Dispatcher;
  /**
   * Receives a newly issued client secret (rotate_credential, jit_reissue) so it can go to a vault.
   * Without it the secret stays only in Keycloak (readable by its admins).
   */
  secretSink?: (a: ProviderAction, clientId: string, secret: string) => Promise<void>;
}

export const LAST_ACTION_ATTRIBUTE = 'tourniquet.lastAction';
/** Space-separated `actionId@creationTimeBefore` of the last secret-changing actions on a client. */
export const SECRET_ACTIONS_ATTRIBUTE = 'tourniquet.secretActions';
/** Keycloak sets this (epoch seconds) whenever it generates a client secret. */
const SECRET_CREATED_ATTRIBUTE = 'client.secret.creation.time';
const MAX_SECRET_INTENTS = 10;
const DEFAULT_STEP_UP = 'CONFIGURE_TOTP';

type UserTarget = { kind: 'user'; userId: string; username: string };
type ClientTarget = { kind: 'client'; clientUuid: string; clientId: string; saUserId: string | null };
type Target = UserTarget | ClientTarget;

type UserState = {
  id: string;
  enabled: boolean;
  requiredActions: string[];
  notBefore: number;
  sessionIds: string[];
};
type ClientState = {
  enabled: boolean;
  notBefore: number;
  confidential: boolean;
  secretFingerprint: string | null;
  lastAction: string | null;
  offlineUserIds: string[];
};
type QuarantineState = {
  role?: { name: string; had: boolean };
  group?: { id: string; path: string; had: boolean };
};

/** What capture() records: JSON, no secrets. */
export type KeycloakPrior = {
  provider: 'keycloak';
  realm: string;
  action: ActionType;
  target: Target;
  capturedAt: number;
  /** The access-token lifetime that bounds residue (client override if set, else the realm's). */
  accessTokenLifespan: number;
  /** The user acted on: the human, or the client's service-account user. */
  user: UserState | null;
  client: ClientState | null;
  consents?: { clientId: string; grants: string[] }[];
  requiredAction?: string;
  quarantine?: QuarantineState;
};

export type KeycloakResult = {
  noop: boolean;
  appliedAt: number;
  changes: string[];
  revokedSessionIds?: string[];
  consentsRevoked?: string[];
  secretFingerprint?: string;
};

interface UserRep {
  id: string;
  username: string;
  enabled?: boolean;
  requiredActions?: string[];
  notBefore?: number;
}
interface ClientRep {
  id: string;
  clientId: string;
  enabled?: boolean;
  publicClient?: boolean;
  bearerOnly?: boolean;
  serviceAccountsEnabled?: boolean;
  notBefore?: number;
  clientAuthenticatorType?: string;
  attributes?: Record<string, string>;
}
interface SessionRep {
  id: string;
  userId: string;
  start: number;
}
interface ConsentRep {
  clientId: string;
  grantedClientScopes?: string[];
  additionalGrants?: { key: string }[];
}
interface RoleRep {
  id: string;
  name: string;
}
interface GroupRep {
  id: string;
  name: string;
  path: string;
  subGroups?: GroupRep[];
}

interface HttpReply {
  status: number;
  text: string;
  date: string | undefined;
  /** From Retry-After (429, 503): how long the server asked us to wait. */
  retryAfterMs?: number;
}

const seg = encodeURIComponent;

function secretFingerprint(secret: string): string {
  return 'sha256:' + createHash('sha256').update(secret).digest('hex').slice(0, 16);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class KeycloakProvider implements IdentityProvider {
  readonly name: string;
  private readonly cfg: KeycloakConfig;
  private readonly base: string;
  private readonly timeoutMs: number;
  private token: { value: string; expiresAt: number } | null = null;
  private tokenInFlight: Promise<string> | null = null;
  /** Keycloak's clock minus ours (ms), from the Date header: not-before values are the server's time. */
  private clockOffsetMs = 0;

  constructor(cfg: KeycloakConfig) {
    if (!cfg.password && !cfg.clientSecret) {
      throw new ProviderError('keycloak: configure username/password or clientId/clientSecret', {
        retriable: false,
        provider: cfg.name ?? 'keycloak',
      });
    }
    this.cfg = cfg;
    this.name = cfg.name ?? 'keycloak';
    this.base = cfg.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = cfg.timeoutMs ?? 10_000;
  }

  supports(action: ActionType): boolean {
    return (ACTION_TYPES as readonly string[]).includes(action);
  }

  // ---------------------------------------------------------------- capture

  async capture(a: ProviderAction): Promise<PriorState> {
    const realm = this.realmOf(a.identity);
    const target = await this.resolve(realm, a.identity);
    this.checkShape(a, target);
    const realmRep = (await this.admin('GET', `/admin/realms/${seg(realm)}`)) as {
      accessTokenLifespan?: number;
    };
    let accessTokenLifespan = realmRep.accessTokenLifespan ?? 300;
    let client: ClientState | null = null;
    if (target.kind === 'client') {
      const rep = await this.getClient(realm, target.clientUuid);
      const override = Number(rep.attributes?.['access.token.lifespan']);
      if (Number.isFinite(override) && override > 0) accessTokenLifespan = override;
      client = await this.clientState(realm, target, rep, a.action);
    }
    const userId = target.kind === 'user' ? target.userId : target.saUserId;
    const user = userId ? await this.userState(realm, userId) : null;
    const prior: KeycloakPrior = {
      provider: 'keycloak',
      realm,
      action: a.action,
      target,
      capturedAt: this.serverNow(),
      accessTokenLifespan,
      user,
      client,
    };
    if ((a.action === 'revoke_tokens' || a.action === 'revoke_oauth_grant') && target.kind === 'user') {
      const consents = await this.consentsInScope(a, realm, target.userId);
      prior.consents = consents.map((c) => ({
        clientId: c.clientId,
        grants: [...(c.grantedClientScopes ?? []), ...(c.additionalGrants ?? []).map((g) => g.key)],
      }));
    }
    if (a.action === 'force_step_up') {
      prior.requiredAction = await this.checkRequiredAction(realm, stepUpAction(a));
    }
    if (a.action === 'quarantine') {
      if (!userId)
        throw this.permanent(`quarantine: ${target.kind} ${describe(target)} has no user to quarantine`);
      prior.quarantine = await this.quarantineState(realm, userId, a);
    }
    return prior;
  }

  // ---------------------------------------------------------------- apply

  async apply(a: ProviderAction, priorState: PriorState): Promise<ApplyResult> {
    const prior = this.prior(priorState);
    const { realm, target } = prior;
    const r = realmPath(realm);
    const changes: string[] = [];
    const appliedAt = this.serverNow();
    const result = (extra: Partial<KeycloakResult> = {}): ApplyResult => {
      const out: KeycloakResult = { noop: changes.length === 0, appliedAt, changes, ...extra };
      return out;
    };

    switch (a.action) {
      case 'revoke_sessions': {
        if (await this.isApplied(a, prior)) return result();
        const revokedSessionIds = await this.revokeSessions(prior, changes);
        return result({ revokedSessionIds });
      }
      case 'revoke_tokens':
      case 'revoke_oauth_grant': {
        if (await this.isApplied(a, prior)) return result();
        const consentsRevoked = await this.revokeGrants(a, prior, changes);
        const revokedSessionIds = await this.revokeSessions(prior, changes);
        return result({ revokedSessionIds, consentsRevoked });
      }
      case 'disable_account': {
        if (target.kind === 'client')
          return this.apply({ ...a, action: 'disable_service_account' }, priorState);
        if (await this.isApplied(a, prior)) return result();
        const now = await this.getUser(realm, target.userId);
        if (now.enabled !== false) {
          await this.admin('PUT', `${r}/users/${seg(target.userId)}`, { enabled: false });
          changes.push(`user ${target.username} disabled`);
        }
        const revokedSessionIds = await this.revokeSessions(prior, changes);
        return result({ revokedSessionIds });
      }
      case 'disable_service_account': {
        const t = this.clientTarget(target, a.action);
        if (await this.isApplied(a, prior)) return result();
        const rep = await this.getClient(realm, t.clientUuid);
        if (rep.enabled !== false) {
          await this.admin('PUT', `${r}/clients/${seg(t.clientUuid)}`, { enabled: false });
          changes.push(`client ${t.clientId} disabled`);
        }
        if (t.saUserId) {
          const sa = await this.getUser(realm, t.saUserId);
          if (sa.enabled !== false) {
            await this.admin('PUT', `${r}/users/${seg(t.saUserId)}`, { enabled: false });
            changes.push(`service-account user ${sa.username} disabled`);
          }
        }
        const revokedSessionIds = await this.revokeSessions(prior, changes);
        await this.markClient(realm, t.clientUuid, a.actionId);
        return result({ revokedSessionIds });
      }
      case 'rotate_credential': {
        const t = this.clientTarget(target, a.action);
        if (await this.rotatedAlready(a, prior, t)) return result();
        const secret = await this.rotateSecret(a, realm, t);
        changes.push(`client ${t.clientId} secret regenerated (${secret})`);
        return result({ secretFingerprint: secret });
      }
      case 'force_step_up': {
        if (await this.isApplied(a, prior)) return result();
        const u = this.userTarget(target, a.action);
        const ra = prior.requiredAction ?? stepUpAction(a);
        const now = await this.getUser(realm, u.userId);
        const actions = now.requiredActions ?? [];
        if (!actions.includes(ra)) {
          await this.admin('PUT', `${r}/users/${seg(u.userId)}`, { requiredActions: [...actions, ra] });
          changes.push(`required action ${ra} added to ${u.username}`);
        }
        const revokedSessionIds = await this.revokeSessions(prior, changes);
        return result({ revokedSessionIds });
      }
      case 'quarantine': {
        await this.removeQuarantined(prior, changes);
        return result();
      }
      case 'jit_reissue': {
        const secretFp = await this.reissue(a, prior, changes);
        return result(secretFp ? { secretFingerprint: secretFp } : {});
      }
    }
    throw this.permanent(`unsupported action ${String(a.action)}`);
  }

  /** Revokes the consents and offline tokens in scope; the clients whose grants were revoked. */
  private async revokeGrants(a: ProviderAction, prior: KeycloakPrior, changes: string[]): Promise<string[]> {
    const { realm, target } = prior;
    const r = realmPath(realm);
    const consentsRevoked: string[] = [];
    if (target.kind === 'user') {
      for (const c of await this.consentsInScope(a, realm, target.userId)) {
        await this.revokeConsent(realm, target.userId, c.clientId);
        consentsRevoked.push(c.clientId);
      }
      if (consentsRevoked.length)
        changes.push(`revoked consents and offline tokens for ${consentsRevoked.join(', ')}`);
    } else {
      const offline = (await this.admin(
        'GET',
        `${r}/clients/${seg(target.clientUuid)}/offline-sessions?max=10000`,
      )) as SessionRep[];
      const users = [...new Set(offline.map((s) => s.userId))];
      for (const u of users) await this.revokeConsent(realm, u, target.clientId);
      if (users.length) {
        consentsRevoked.push(target.clientId);
        changes.push(
          `revoked ${users.length} user(s)' consent and offline tokens for client ${target.clientId}`,
        );
      }
    }
    return consentsRevoked;
  }

  /** Takes the quarantined role and group away (those the user still has). */
  private async removeQuarantined(prior: KeycloakPrior, changes: string[]): Promise<void> {
    const { realm, target } = prior;
    const r = realmPath(realm);
    const userId = subjectUserId(target);
    const q = prior.quarantine ?? {};
    if (!userId) throw this.permanent(`quarantine: ${describe(target)} has no user`);
    if (q.role) {
      const mapped = (await this.admin('GET', `${r}/users/${seg(userId)}/role-mappings/realm`)) as RoleRep[];
      const hit = mapped.find((x) => x.name === q.role?.name);
      if (hit) {
        await this.admin('DELETE', `${r}/users/${seg(userId)}/role-mappings/realm`, [hit]);
        changes.push(`realm role ${hit.name} removed`);
      }
    }
    if (q.group) {
      const groups = (await this.admin('GET', `${r}/users/${seg(userId)}/groups`)) as GroupRep[];
      if (groups.some((g) => g.id === q.group?.id)) {
        await this.admin('DELETE', `${r}/users/${seg(userId)}/groups/${seg(q.group.id)}`);
        changes.push(`removed from group ${q.group.path}`);
      }
    }
  }

  /** Re-enables the identity with fresh credentials; the new secret's fingerprint for a client. */
  private async reissue(
    a: ProviderAction,
    prior: KeycloakPrior,
    changes: string[],
  ): Promise<string | undefined> {
    const { realm, target } = prior;
    const r = realmPath(realm);
    if (target.kind === 'user') {
      const now = await this.getUser(realm, target.userId);
      const patch: Record<string, unknown> = {};
      if (now.enabled === false) patch.enabled = true;
      const actions = now.requiredActions ?? [];
      if (!actions.includes('UPDATE_PASSWORD')) patch.requiredActions = [...actions, 'UPDATE_PASSWORD'];
      if (Object.keys(patch).length) {
        await this.admin('PUT', `${r}/users/${seg(target.userId)}`, patch);
        if (patch.enabled) changes.push(`user ${target.username} enabled`);
        if (patch.requiredActions) changes.push(`UPDATE_PASSWORD required: a fresh password at next sign-in`);
      }
      return undefined;
    }
    const rep = await this.getClient(realm, target.clientUuid);
    if (
      rep.publicClient ||
      rep.bearerOnly ||
      (rep.clientAuthenticatorType ?? 'client-secret') !== 'client-secret'
    ) {
      throw this.permanent(
        `jit_reissue: client ${target.clientId} does not authenticate with a client secret`,
      );
    }
    let secretFp: string | undefined;
    if (!(await this.rotatedAlready(a, prior, target))) {
      secretFp = await this.rotateSecret(a, realm, target);
      changes.push(`client ${target.clientId} issued a fresh secret (${secretFp})`);
    }
    if (rep.enabled === false) {
      await this.admin('PUT', `${r}/clients/${seg(target.clientUuid)}`, { enabled: true });
      changes.push(`client ${target.clientId} enabled`);
    }
    if (target.saUserId) {
      const sa = await this.getUser(realm, target.saUserId);
      if (sa.enabled === false) {
        await this.admin('PUT', `${r}/users/${seg(target.saUserId)}`, { enabled: true });
        changes.push(`service-account user ${sa.username} enabled`);
      }
    }
    return secretFp;
  }

  // ---------------------------------------------------------------- isApplied

  async isApplied(a: ProviderAction, priorState: PriorState): Promise<boolean> {
    const prior = this.prior(priorState);
    const { realm, target } = prior;
    const userRevoked = async (): Promise<boolean> => {
      const userId = subjectUserId(target);
      if (!userId || !prior.user) return true;
      const u = await this.getUser(realm, userId);
      return (u.notBefore ?? 0) > prior.user.notBefore;
    };
    const clientRevoked = async (): Promise<boolean> => {
      if (target.kind !== 'client' || !prior.client) return true;
      const c = await this.getClient(realm, target.clientUuid);
      return (c.notBefore ?? 0) > prior.client.notBefore;
    };
    switch (a.action) {
      case 'revoke_sessions':
        return (await clientRevoked()) && (await userRevoked());
      case 'revoke_tokens':
      case 'revoke_oauth_grant': {
        if (target.kind === 'user') {
          if ((await this.consentsInScope(a, realm, target.userId)).length > 0) return false;
        } else if ((await this.offlineSessionCount(realm, target.clientUuid)) > 0) return false;
        return (await clientRevoked()) && (await userRevoked());
      }
      case 'disable_account': {
        if (target.kind === 'client')
          return this.isApplied({ ...a, action: 'disable_service_account' }, priorState);
        const u = await this.getUser(realm, target.userId);
        return u.enabled === false && (await userRevoked());
      }
      case 'disable_service_account': {
        const t = this.clientTarget(target, a.action);
        const c = await this.getClient(realm, t.clientUuid);
        if (c.enabled !== false) return false;
        if (t.saUserId) return (await this.getUser(realm, t.saUserId)).enabled === false;
        return true;
      }
      case 'rotate_credential': {
        const t = this.clientTarget(target, a.action);
        return (await this.currentFingerprint(realm, t.clientUuid)) !== prior.client?.secretFingerprint;
      }
      case 'force_step_up': {
        const u = this.userTarget(target, a.action);
        const ra = prior.requiredAction ?? stepUpAction(a);
        const rep = await this.getUser(realm, u.userId);
        return (rep.requiredActions ?? []).includes(ra) && (await userRevoked());
      }
      case 'quarantine': {
        const userId = subjectUserId(target);
        if (!userId) return false;
        const now = await this.quarantineState(realm, userId, a);
        return !now.role?.had && !now.group?.had;
      }
      case 'jit_reissue': {
        if (target.kind === 'user') {
          const u = await this.getUser(realm, target.userId);
          return u.enabled !== false && (u.requiredActions ?? []).includes('UPDATE_PASSWORD');
        }
        const c = await this.getClient(realm, target.clientUuid);
        if (c.enabled === false) return false;
        if (target.saUserId && (await this.getUser(realm, target.saUserId)).enabled === false) return false;
        return (await this.currentFingerprint(realm, target.clientUuid)) !== prior.client?.secretFingerprint;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- verify

  async verify(a: ProviderAction, priorState: PriorState, resultState: ApplyResult): Promise<Probe[]> {
    const prior = this.prior(priorState);
    const { realm, target } = prior;
    const probes: Probe[] = [];
    const userId = subjectUserId(target);
    const {
      sessionsProbe,
      notBeforeProbe,
      refreshProbe,
      userEnabledProbe,
      clientEnabledProbe,
      clientCredentialsProbe,
    } = this.probesOf(a, prior, resultState as Partial<KeycloakResult>, probes);

    switch (a.action) {
      case 'revoke_sessions':
        await sessionsProbe();
        await notBeforeProbe();
        await refreshProbe();
        break;
      case 'revoke_tokens':
      case 'revoke_oauth_grant': {
        if (target.kind === 'user') {
          const left = (await this.consentsInScope(a, realm, target.userId)).map((c) => c.clientId);
          probes.push({
            probe: 'consents_revoked',
            ok: left.length === 0,
            detail: left.length
              ? `grants remain for ${left.join(', ')}`
              : 'no consent or offline token remains',
          });
        } else {
          const count = await this.offlineSessionCount(realm, target.clientUuid);
          probes.push({
            probe: 'offline_sessions_revoked',
            ok: count === 0,
            detail: `${count} offline session(s) remain for client ${target.clientId}`,
          });
        }
        await sessionsProbe();
        await notBeforeProbe();
        await refreshProbe();
        break;
      }
      case 'disable_account':
        await userEnabledProbe(false);
        await clientEnabledProbe(false);
        await sessionsProbe();
        await refreshProbe();
        break;
      case 'disable_service_account':
        await clientEnabledProbe(false);
        await userEnabledProbe(false);
        await clientCredentialsProbe(false);
        await refreshProbe();
        break;
      case 'rotate_credential': {
        const t = this.clientTarget(target, a.action);
        const fp = await this.currentFingerprint(realm, t.clientUuid);
        probes.push({
          probe: 'secret_rotated',
          ok: fp !== prior.client?.secretFingerprint,
          detail: `secret fingerprint ${fp} (was ${prior.client?.secretFingerprint ?? 'none'})`,
        });
        const c = await this.getClient(realm, t.clientUuid);
        if (c.enabled !== false) await clientCredentialsProbe(true);
        break;
      }
      case 'force_step_up': {
        const ra = prior.requiredAction ?? stepUpAction(a);
        const u = await this.getUser(realm, this.userTarget(target, a.action).userId);
        probes.push({
          probe: 'step_up_required',
          ok: (u.requiredActions ?? []).includes(ra),
          detail: `required actions: ${(u.requiredActions ?? []).join(', ') || 'none'}`,
        });
        await sessionsProbe();
        await refreshProbe();
        break;
      }
      case 'quarantine': {
        if (userId) probes.push(...(await this.quarantineProbes(prior, userId)));
        break;
      }
      case 'jit_reissue': {
        await userEnabledProbe(true);
        await clientEnabledProbe(true);
        if (target.kind === 'client') {
          const fp = await this.currentFingerprint(realm, target.clientUuid);
          probes.push({
            probe: 'secret_reissued',
            ok: fp !== prior.client?.secretFingerprint,
            detail: `secret fingerprint ${fp} (was ${prior.client?.secretFingerprint ?? 'none'})`,
          });
          await clientCredentialsProbe(true);
        } else {
          const u = await this.getUser(realm, target.userId);
          probes.push({
            probe: 'fresh_password_required',
            ok: (u.requiredActions ?? []).includes('UPDATE_PASSWORD'),
            detail: `required actions: ${(u.requiredActions ?? []).join(', ') || 'none'}`,
          });
        }
        break;
      }
    }
    return probes;
  }

  /**
   * The probes verify() runs, each pushing its finding onto `probes`: sessions, not-before, the
   * pre-action refresh token, enabled flags and client credentials.
   */
  private probesOf(a: ProviderAction, prior: KeycloakPrior, res: Partial<KeycloakResult>, probes: Probe[]) {
    const { realm, target } = prior;
    const r = realmPath(realm);
    const userId = subjectUserId(target);

    const sessionsProbe = async () => {
      if (!userId) return;
      const sessions = (await this.admin('GET', `${r}/users/${seg(userId)}/sessions`)) as SessionRep[];
      const old = new Set([...(prior.user?.sessionIds ?? []), ...(res.revokedSessionIds ?? [])]);
      const survivors = sessions.filter((s) => old.has(s.id));
      probes.push({
        probe: 'sessions_revoked',
        ok: survivors.length === 0,
        detail:
          survivors.length === 0
            ? `none of the ${old.size} pre-action session(s) remain; ${sessions.length} active now`
            : `${survivors.length} pre-action session(s) still active: ${survivors.map((s) => s.id).join(', ')}`,
      });
    };
    const notBeforeProbe = async () => {
      if (userId && prior.user) {
        const u = await this.getUser(realm, userId);
        const ok = (u.notBefore ?? 0) > prior.user.notBefore;
        probes.push({
          probe: 'user_not_before',
          ok,
          detail: `user not-before ${u.notBefore ?? 0} (was ${prior.user.notBefore}): tokens issued earlier are refused`,
        });
      }
      if (target.kind === 'client' && prior.client) {
        const c = await this.getClient(realm, target.clientUuid);
        probes.push({
          probe: 'client_not_before',
          ok: (c.notBefore ?? 0) > prior.client.notBefore,
          detail: `client not-before ${c.notBefore ?? 0} (was ${prior.client.notBefore})`,
        });
      }
    };
    const refreshProbe = async () => {
      const rt = a.args.probeRefreshToken;
      if (typeof rt !== 'string' || rt === '') return;
      const clientId =
        typeof a.args.probeClientId === 'string'
          ? a.args.probeClientId
          : target.kind === 'client'
            ? target.clientId
            : undefined;
      if (!clientId) {
        probes.push({ probe: 'refresh_token_refused', ok: false, detail: 'args.probeClientId missing' });
        return;
      }
      const reply = await this.tokenEndpoint(realm, {
        grant_type: 'refresh_token',
        client_id: clientId,
        refresh_token: rt,
      });
      probes.push({
        probe: 'refresh_token_refused',
        ok: reply.status !== 200,
        detail:
          reply.status === 200
            ? 'the pre-action refresh token was ACCEPTED at the token endpoint'
            : `token endpoint refused the pre-action refresh token (${reply.status} ${oauthError(reply.text)})`,
      });
    };
    const userEnabledProbe = async (want: boolean) => {
      if (!userId) return;
      const u = await this.getUser(realm, userId);
      probes.push({
        probe: want ? 'user_enabled' : 'user_disabled',
        ok: (u.enabled !== false) === want,
        detail: `user ${u.username} enabled=${u.enabled !== false}`,
      });
    };
    const clientEnabledProbe = async (want: boolean) => {
      if (target.kind !== 'client') return;
      const c = await this.getClient(realm, target.clientUuid);
      probes.push({
        probe: want ? 'client_enabled' : 'client_disabled',
        ok: (c.enabled !== false) === want,
        detail: `client ${c.clientId} enabled=${c.enabled !== false}`,
      });
    };
    const clientCredentialsProbe = async (wantAccepted: boolean) => {
      // Only a client with a service account may use client_credentials at all.
      if (target.kind !== 'client' || !prior.client?.confidential || !target.saUserId) return;
      const secret = await this.currentSecret(realm, target.clientUuid);
      if (!secret) return;
      const reply = await this.tokenEndpoint(realm, {
        grant_type: 'client_credentials',
        client_id: target.clientId,
        client_secret: secret,
      });
      const accepted = reply.status === 200;
      probes.push({
        probe: wantAccepted ? 'client_credentials_accepted' : 'client_credentials_refused',
        ok: accepted === wantAccepted,
        detail: accepted
          ? `client_credentials with the current secret (${secretFingerprint(secret)}) issues tokens`
          : `client_credentials with the current secret refused (${reply.status} ${oauthError(reply.text)})`,
      });
    };
    return {
      sessionsProbe,
      notBeforeProbe,
      refreshProbe,
      userEnabledProbe,
      clientEnabledProbe,
      clientCredentialsProbe,
    };
  }

  /** Whether the quarantined role and group are gone, directly and through groups or composites. */
  private async quarantineProbes(prior: KeycloakPrior, userId: string): Promise<Probe[]> {
    const r = realmPath(prior.realm);
    const out: Probe[] = [];
    const q = prior.quarantine ?? {};
    if (q.role) {
      const direct = (await this.admin('GET', `${r}/users/${seg(userId)}/role-mappings/realm`)) as RoleRep[];
      const effective = (await this.admin(
        'GET',
        `${r}/users/${seg(userId)}/role-mappings/realm/composite`,
      )) as RoleRep[];
      const d = direct.some((x) => x.name === q.role?.name);
      const e = effective.some((x) => x.name === q.role?.name);
      out.push({
        probe: 'role_removed',
        ok: !d && !e,
        detail: d
          ? `realm role ${q.role.name} still mapped`
          : e
            ? `realm role ${q.role.name} still granted through a group or composite role`
            : `realm role ${q.role.name} no longer granted`,
      });
    }
    if (q.group) {
      const groups = (await this.admin('GET', `${r}/users/${seg(userId)}/groups`)) as GroupRep[];
      const member = groups.some((g) => g.id === q.group?.id);
      out.push({
        probe: 'group_removed',
        ok: !member,
        detail: member ? `still a member of ${q.group.path}` : `not a member of ${q.group.path}`,
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- revert

  async revert(a: ProviderAction, priorState: PriorState, resultState: ApplyResult): Promise<RevertResult> {
    const prior = this.prior(priorState);
    const res = resultState as Partial<KeycloakResult>;
    const { realm, target } = prior;
    const restored: string[] = [];
    const residue: string[] = [];
    const tokens = `access tokens issued before the action stay valid until expiry (realm accessTokenLifespan=${prior.accessTokenLifespan}s)`;
    const sessions = 'sessions cannot be restored; users must sign in again';
    const userId = subjectUserId(target);

    const restoreUserEnabled = () => this.restoreUserEnabled(prior, restored);
    const restoreClientEnabled = () => this.restoreClientEnabled(prior, restored);

    switch (a.action) {
      case 'revoke_sessions':
        residue.push(sessions, tokens);
        break;
      case 'revoke_tokens':
      case 'revoke_oauth_grant': {
        residue.push(sessions);
        const revoked = res.consentsRevoked ?? prior.consents?.map((c) => c.clientId) ?? [];
        if (revoked.length) {
          residue.push(
            `revoked grants remain revoked (consents and offline tokens for ${revoked.join(', ')}); users must consent again`,
          );
        }
        residue.push(tokens);
        break;
      }
      case 'disable_account':
        if (target.kind === 'client')
          return this.revert({ ...a, action: 'disable_service_account' }, priorState, resultState);
        await restoreUserEnabled();
        residue.push(sessions, tokens);
        break;
      case 'disable_service_account':
        await restoreClientEnabled();
        await restoreUserEnabled();
        residue.push(tokens);
        break;
      case 'rotate_credential':
        // Nothing to put back: the old secret is gone for good. Refused, so the record says so.
        throw new RollbackRefusedError({
          provider: this.name,
          action: a.action,
          reason: `rotated client secret cannot be restored (was ${prior.client?.secretFingerprint ?? 'none'}, now ${res.secretFingerprint ?? 'unknown'}); consumers need the new secret`,
        });
      case 'force_step_up': {
        restored.push(await this.withdrawStepUp(a, prior));
        residue.push(sessions, tokens);
        break;
      }
      case 'quarantine': {
        if (!userId) break;
        await this.restoreQuarantined(prior, userId, restored);
        residue.push('tokens issued while quarantined lack the role until they are refreshed');
        break;
      }
      case 'jit_reissue': {
        if (target.kind === 'user') {
          await restoreUserEnabled();
          const before = prior.user?.requiredActions ?? [];
          if (!before.includes('UPDATE_PASSWORD')) {
            await this.dropRequiredAction(realm, target.userId, 'UPDATE_PASSWORD');
            restored.push('UPDATE_PASSWORD requirement removed');
          }
          residue.push('a password changed at sign-in in the meantime cannot be restored');
        } else {
          await restoreClientEnabled();
          await restoreUserEnabled();
          residue.push(
            `re-issued client secret cannot be withdrawn and the previous secret cannot be restored (was ${prior.client?.secretFingerprint ?? 'none'})`,
          );
          if (!prior.client?.enabled) residue.push(tokens);
        }
        break;
      }
    }
    const clientRevocation: ActionType[] = [
      'revoke_sessions',
      'revoke_tokens',
      'revoke_oauth_grant',
      'disable_service_account',
      'disable_account',
    ];
    if (target.kind === 'client' && clientRevocation.includes(a.action)) {
      residue.push(
        `tokens issued to client ${target.clientId} before the action stay refused (client not-before); it must request new ones`,
      );
    }
    return { restored, residue };
  }

  private async restoreUserEnabled(prior: KeycloakPrior, restored: string[]): Promise<void> {
    const userId = subjectUserId(prior.target);
    if (!userId || !prior.user) return;
    const u = await this.getUser(prior.realm, userId);
    if ((u.enabled !== false) !== prior.user.enabled) {
      await this.admin('PUT', `${realmPath(prior.realm)}/users/${seg(userId)}`, {
        enabled: prior.user.enabled,
      });
    }
    restored.push(`user ${u.username} enabled=${prior.user.enabled}`);
  }

  private async restoreClientEnabled(prior: KeycloakPrior, restored: string[]): Promise<void> {
    const { realm, target } = prior;
    if (target.kind !== 'client' || !prior.client) return;
    const c = await this.getClient(realm, target.clientUuid);
    if ((c.enabled !== false) !== prior.client.enabled) {
      await this.admin('PUT', `${realmPath(realm)}/clients/${seg(target.clientUuid)}`, {
        enabled: prior.client.enabled,
      });
    }
    restored.push(`client ${target.clientId} enabled=${prior.client.enabled}`);
  }

  /** Takes a required action off the user, if it is there. */
  private async dropRequiredAction(realm: string, userId: string, requiredAction: string): Promise<void> {
    const now = (await this.getUser(realm, userId)).requiredActions ?? [];
    if (now.includes(requiredAction)) {
      await this.admin('PUT', `${realmPath(realm)}/users/${seg(userId)}`, {
        requiredActions: now.filter((x) => x !== requiredAction),
      });
    }
  }

  /** Removes the step-up required action, unless it was already required before the action. */
  private async withdrawStepUp(a: ProviderAction, prior: KeycloakPrior): Promise<string> {
    const { target } = prior;
    const u = this.userTarget(target, a.action);
    const ra = prior.requiredAction ?? stepUpAction(a);
    const before = prior.user?.requiredActions ?? [];
    if (!before.includes(ra)) {
      await this.dropRequiredAction(prior.realm, u.userId, ra);
      return `required action ${ra} removed from ${u.username}`;
    }
    return `required action ${ra} left in place: it was already required before the action`;
  }

  /** Grants the quarantined role and group membership again (those the user had). */
  private async restoreQuarantined(prior: KeycloakPrior, userId: string, restored: string[]): Promise<void> {
    const r = realmPath(prior.realm);
    const q = prior.quarantine ?? {};
    if (q.role?.had) {
      const mapped = (await this.admin('GET', `${r}/users/${seg(userId)}/role-mappings/realm`)) as RoleRep[];
      if (!mapped.some((x) => x.name === q.role?.name)) {
        const role = (await this.admin('GET', `${r}/roles/${seg(q.role.name)}`)) as RoleRep;
        await this.admin('POST', `${r}/users/${seg(userId)}/role-mappings/realm`, [role]);
      }
      restored.push(`realm role ${q.role.name} granted again`);
    }
    if (q.group?.had) {
      await this.admin('PUT', `${r}/users/${seg(userId)}/groups/${seg(q.group.id)}`);
      restored.push(`member of ${q.group.path} again`);
    }
  }

  // ---------------------------------------------------------------- helpers: actions

  /** Logs the subject user out (all sessions, not-before advanced) and, for a client, advances its not-before. */
  private async revokeSessions(prior: KeycloakPrior, changes: string[]): Promise<string[]> {
    const { realm, target } = prior;
    const r = realmPath(realm);
    if (target.kind === 'client') {
      const c = await this.getClient(realm, target.clientUuid);
      const nb = Math.max(Math.floor(this.serverNow() / 1000), (c.notBefore ?? 0) + 1);
      await this.admin('PUT', `${r}/clients/${seg(target.clientUuid)}`, { notBefore: nb });
      changes.push(`client ${target.clientId} not-before set to ${nb}: its earlier tokens are refused`);
    }
    const userId = subjectUserId(target);
    if (!userId) return [];
    const sessions = (await this.admin('GET', `${r}/users/${seg(userId)}/sessions`)) as SessionRep[];
    await this.admin('POST', `${r}/users/${seg(userId)}/logout`);
    changes.push(`user ${userId} logged out (${sessions.length} session(s)); earlier refresh tokens refused`);
    return sessions.map((s) => s.id);
  }

  private async revokeConsent(realm: string, userId: string, clientId: string): Promise<void> {
    try {
      await this.admin('DELETE', `${realmPath(realm)}/users/${seg(userId)}/consents/${seg(clientId)}`);
    } catch (err) {
      // 404: nothing (left) to revoke for this pair; revocation is idempotent.
      if (!(err instanceof ProviderError && err.details?.status === 404)) throw err;
    }
  }

  /**
   * Has this action's secret change already happened? True when the secret differs from the captured one,
   * or when this action id left its intent on the client (attribute tourniquet.secretActions, written
   * before the rotation together with Keycloak's client.secret.creation.time at that moment) and Keycloak
   * has regenerated the secret since. So a crash anywhere, followed by a fresh capture, never rotates twice.
   */
  private async rotatedAlready(a: ProviderAction, prior: KeycloakPrior, t: ClientTarget): Promise<boolean> {
    if ((await this.currentFingerprint(prior.realm, t.clientUuid)) !== prior.client?.secretFingerprint)
      return true;
    const rep = await this.getClient(prior.realm, t.clientUuid);
    const intent = secretIntents(rep).find((x) => x.actionId === a.actionId);
    if (!intent) return false;
    return (rep.attributes?.[SECRET_CREATED_ATTRIBUTE] ?? 'none') !== intent.createdBefore;
  }

  private async rotateSecret(a: ProviderAction, realm: string, t: ClientTarget): Promise<string> {
    const before = await this.getClient(realm, t.clientUuid);
    const intents = secretIntents(before).filter((x) => x.actionId !== a.actionId);
    intents.push({
      actionId: a.actionId,
      createdBefore: before.attributes?.[SECRET_CREATED_ATTRIBUTE] ?? 'none',
    });
    await this.admin('PUT', `${realmPath(realm)}/clients/${seg(t.clientUuid)}`, {
      attributes: {
        ...(before.attributes ?? {}),
        [LAST_ACTION_ATTRIBUTE]: a.actionId,
        [SECRET_ACTIONS_ATTRIBUTE]: intents
          .slice(-MAX_SECRET_INTENTS)
          .map((x) => `${encodeURIComponent(x.actionId)}@${x.createdBefore}`)
          .join(' '),
      },
    });
    const rep = (await this.admin(
      'POST',
      `${realmPath(realm)}/clients/${seg(t.clientUuid)}/client-secret`,
    )) as {
      value?: string;
    };
    if (!rep?.value) throw this.permanent(`client ${t.clientId}: Keycloak returned no secret`);
    if (this.cfg.secretSink) await this.cfg.secretSink(a, t.clientId, rep.value);
    return secretFingerprint(rep.value);
  }

  /** Records the action id on the client (attribute tourniquet.lastAction). */
  private async markClient(realm: string, clientUuid: string, actionId: string): Promise<void> {
    const rep = await this.getClient(realm, clientUuid);
    if (rep.attributes?.[LAST_ACTION_ATTRIBUTE] === actionId) return;
    await this.admin('PUT', `${realmPath(realm)}/clients/${seg(clientUuid)}`, {
      attributes: { ...(rep.attributes ?? {}), [LAST_ACTION_ATTRIBUTE]: actionId },
    });
  }

  // ---------------------------------------------------------------- helpers: reads

  private realmOf(identity: IdentityRef): string {
    const realm = identity.tenant ?? this.cfg.defaultRealm;
    if (!realm)
      throw this.permanent(`identity ${identity.id} names no realm (tenant) and no defaultRealm is set`);
    return realm;
  }

  private async resolve(realm: string, identity: IdentityRef): Promise<Target> {
    const r = realmPath(realm);
    if (identity.type === 'human') {
      const byId = await this.tryGet<UserRep>(`${r}/users/${seg(identity.id)}`);
      if (byId) return { kind: 'user', userId: byId.id, username: byId.username };
      const list = (await this.admin(
        'GET',
        `${r}/users?username=${seg(identity.id)}&exact=true&briefRepresentation=true`,
      )) as UserRep[];
      const u = list.find((x) => x.username === identity.id.toLowerCase() || x.username === identity.id);
      if (!u) throw this.permanent(`no user ${identity.id} in realm ${realm}`, 404);
      return { kind: 'user', userId: u.id, username: u.username };
    }
    const list = (await this.admin('GET', `${r}/clients?clientId=${seg(identity.id)}`)) as ClientRep[];
    let c = list.find((x) => x.clientId === identity.id);
    if (!c) c = (await this.tryGet<ClientRep>(`${r}/clients/${seg(identity.id)}`)) ?? undefined;
    if (!c) throw this.permanent(`no client ${identity.id} in realm ${realm}`, 404);
    let saUserId: string | null = null;
    if (c.serviceAccountsEnabled) {
      const sa = await this.tryGet<UserRep>(`${r}/clients/${seg(c.id)}/service-account-user`);
      saUserId = sa?.id ?? null;
    }
    return { kind: 'client', clientUuid: c.id, clientId: c.clientId, saUserId };
  }

  private checkShape(a: ProviderAction, target: Target): void {
    if (target.kind === 'client' && a.action === 'force_step_up') {
      throw this.permanent(`force_step_up needs an interactive user; ${describe(target)} is a client`);
    }
    if (
      target.kind === 'user' &&
      (a.action === 'disable_service_account' || a.action === 'rotate_credential')
    ) {
      throw this.permanent(
        `${a.action} acts on a client (its secret/service account); ${describe(target)} is a user — use disable_account or force_step_up`,
      );
    }
    if (a.action === 'quarantine' && typeof a.args.role !== 'string' && typeof a.args.group !== 'string') {
      throw this.permanent('quarantine needs args.role (realm role) or args.group (group name or path)');
    }
  }

  private async clientState(
    realm: string,
    t: ClientTarget,
    rep: ClientRep,
    action: ActionType,
  ): Promise<ClientState> {
    const confidential = !rep.publicClient && !rep.bearerOnly;
    if ((action === 'rotate_credential' || action === 'jit_reissue') && !confidential) {
      throw this.permanent(`${action}: client ${t.clientId} is public or bearer-only and has no secret`);
    }
    const secret = confidential ? await this.currentSecret(realm, t.clientUuid) : null;
    let offlineUserIds: string[] = [];
    if (action === 'revoke_tokens' || action === 'revoke_oauth_grant') {
      const offline = (await this.admin(
        'GET',
        `${realmPath(realm)}/clients/${seg(t.clientUuid)}/offline-sessions?max=10000`,
      )) as SessionRep[];
      offlineUserIds = [...new Set(offline.map((s) => s.userId))];
    }
    return {
      enabled: rep.enabled !== false,
      notBefore: rep.notBefore ?? 0,
      confidential,
      secretFingerprint: secret ? secretFingerprint(secret) : null,
      lastAction: rep.attributes?.[LAST_ACTION_ATTRIBUTE] ?? null,
      offlineUserIds,
    };
  }

  private async userState(realm: string, userId: string): Promise<UserState> {
    const u = await this.getUser(realm, userId);
    const sessions = (await this.admin(
      'GET',
      `${realmPath(realm)}/users/${seg(userId)}/sessions`,
    )) as SessionRep[];
    return {
      id: u.id,
      enabled: u.enabled !== false,
      requiredActions: u.requiredActions ?? [],
      notBefore: u.notBefore ?? 0,
      sessionIds: sessions.map((s) => s.id),
    };
  }

  private async quarantineState(realm: string, userId: string, a: ProviderAction): Promise<QuarantineState> {
    const r = realmPath(realm);
    const out: QuarantineState = {};
    if (typeof a.args.role === 'string') {
      const role = await this.tryGet<RoleRep>(`${r}/roles/${seg(a.args.role)}`);
      if (!role) throw this.permanent(`quarantine: no realm role ${a.args.role} in realm ${realm}`, 404);
      const mapped = (await this.admin('GET', `${r}/users/${seg(userId)}/role-mappings/realm`)) as RoleRep[];
      out.role = { name: role.name, had: mapped.some((x) => x.name === role.name) };
    }
    if (typeof a.args.group === 'string') {
      const group = await this.findGroup(realm, a.args.group);
      if (!group) throw this.permanent(`quarantine: no group ${a.args.group} in realm ${realm}`, 404);
      const groups = (await this.admin('GET', `${r}/users/${seg(userId)}/groups`)) as GroupRep[];
      out.group = { id: group.id, path: group.path, had: groups.some((g) => g.id === group.id) };
    }
    return out;
  }

  private async findGroup(realm: string, nameOrPath: string): Promise<GroupRep | null> {
    const r = realmPath(realm);
    if (nameOrPath.startsWith('/')) {
      return this.tryGet<GroupRep>(
        `${r}/group-by-path/${nameOrPath.split('/').filter(Boolean).map(seg).join('/')}`,
      );
    }
    const found = (await this.admin('GET', `${r}/groups?search=${seg(nameOrPath)}&exact=true`)) as GroupRep[];
    const walk = (gs: GroupRep[]): GroupRep | null => {
      for (const g of gs) {
        if (g.name === nameOrPath) return g;
        const sub = walk(g.subGroups ?? []);
        if (sub) return sub;
      }
      return null;
    };
    return walk(found);
  }

  private async checkRequiredAction(realm: string, alias: string): Promise<string> {
    const list = (await this.admin('GET', `${realmPath(realm)}/authentication/required-actions`)) as {
      alias: string;
      enabled: boolean;
    }[];
    const ra = list.find((x) => x.alias === alias);
    if (!ra) throw this.permanent(`force_step_up: realm ${realm} has no required action ${alias}`);
    if (!ra.enabled)
      throw this.permanent(`force_step_up: required action ${alias} is disabled in realm ${realm}`);
    return alias;
  }

  /** The user's consents (granted clients, with their offline tokens) that the action is about. */
  private async consentsInScope(a: ProviderAction, realm: string, userId: string): Promise<ConsentRep[]> {
    const consents = (await this.admin(
      'GET',
      `${realmPath(realm)}/users/${seg(userId)}/consents`,
    )) as ConsentRep[];
    return consents.filter((c) => this.consentInScope(a, c.clientId));
  }

  /** How many offline sessions a client still holds. */
  private async offlineSessionCount(realm: string, clientUuid: string): Promise<number> {
    const n = (await this.admin(
      'GET',
      `${realmPath(realm)}/clients/${seg(clientUuid)}/offline-session-count`,
    )) as {
      count?: number;
    };
    return n.count ?? 0;
  }

  private consentInScope(a: ProviderAction, clientId: string): boolean {
    const only = a.args.client ?? a.args.clientId;
    if (a.action === 'revoke_oauth_grant' && typeof only === 'string') return clientId === only;
    return true;
  }

  private async getUser(realm: string, userId: string): Promise<UserRep> {
    return (await this.admin('GET', `${realmPath(realm)}/users/${seg(userId)}`)) as UserRep;
  }

  private async getClient(realm: string, clientUuid: string): Promise<ClientRep> {
    return (await this.admin('GET', `${realmPath(realm)}/clients/${seg(clientUuid)}`)) as ClientRep;
  }

  private async currentSecret(realm: string, clientUuid: string): Promise<string | null> {
    const rep = (await this.admin('GET', `${realmPath(realm)}/clients/${seg(clientUuid)}/client-secret`)) as {
      value?: string;
    };
    return rep?.value ?? null;
  }

  private async currentFingerprint(realm: string, clientUuid: string): Promise<string | null> {
    const s = await this.currentSecret(realm, clientUuid);
    return s ? secretFingerprint(s) : null;
  }

  private clientTarget(target: Target, action: ActionType): ClientTarget {
    if (target.kind !== 'client')
      throw this.permanent(`${action} acts on a client; ${describe(target)} is a user`);
    return target;
  }

  private userTarget(target: Target, action: ActionType): UserTarget {
    if (target.kind !== 'user')
      throw this.permanent(`${action} acts on a user; ${describe(target)} is a client`);
    return target;
  }

  private prior(p: PriorState): KeycloakPrior {
    const prior = p as Partial<KeycloakPrior>;
    if (prior.provider !== 'keycloak' || !prior.realm || !prior.target) {
      throw this.permanent('prior state was not captured by the Keycloak provider');
    }
    return prior as KeycloakPrior;
  }

  private serverNow(): number {
    return Date.now() + this.clockOffsetMs;
  }

  // ---------------------------------------------------------------- helpers: HTTP

  private permanent(message: string, status?: number): ProviderError {
    return new ProviderError(`keycloak: ${message}`, {
      retriable: false,
      provider: this.name,
      ...(status ? { details: { status } } : {}),
    });
  }

  private async send(
    method: Dispatcher.HttpMethod,
    url: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<HttpReply> {
    try {
      const res = await request(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(this.cfg.dispatcher ? { dispatcher: this.cfg.dispatcher } : {}),
      });
      const text = await res.body.text();
      const date = typeof res.headers.date === 'string' ? res.headers.date : undefined;
      if (date) {
        const t = Date.parse(date);
        // The Date header has 1 s resolution: only trust it when we are off by more than that.
        if (Number.isFinite(t) && Math.abs(t - Date.now()) > 2000) this.clockOffsetMs = t - Date.now();
      }
      const retryAfter = res.headers['retry-after'];
      const retryAfterMs = parseRetryAfter(
        typeof retryAfter === 'string' ? retryAfter : undefined,
        Date.now(),
      );
      return { status: res.statusCode, text, date, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    } catch (err) {
      throw new ProviderError(
        `keycloak: ${method} ${new URL(url).pathname} failed: ${(err as Error).message}`,
        {
          retriable: true,
          provider: this.name,
          cause: err,
        },
      );
    }
  }

  private async adminToken(force = false): Promise<string> {
    if (!force && this.token && this.token.expiresAt > Date.now() + 10_000) return this.token.value;
    if (this.tokenInFlight) return this.tokenInFlight;
    this.tokenInFlight = (async () => {
      const form: Record<string, string> = this.cfg.username
        ? {
            grant_type: 'password',
            client_id: this.cfg.clientId ?? 'admin-cli',
            username: this.cfg.username,
            password: this.cfg.password ?? '',
          }
        : { grant_type: 'client_credentials', client_id: this.cfg.clientId ?? 'admin-cli' };
      if (this.cfg.clientSecret) form.client_secret = this.cfg.clientSecret;
      const reply = await this.tokenEndpoint(this.cfg.adminRealm ?? 'master', form);
      if (reply.status !== 200) {
        throw new ProviderError(`keycloak: admin token refused (${reply.status} ${oauthError(reply.text)})`, {
          retriable: reply.status >= 500 || reply.status === 429,
          provider: this.name,
          details: { status: reply.status },
          ...retryAfterOf(reply),
        });
      }
      const body = JSON.parse(reply.text) as { access_token: string; expires_in: number };
      this.token = { value: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 };
      return body.access_token;
    })().finally(() => {
      this.tokenInFlight = null;
    });
    return this.tokenInFlight;
  }

  /** POST to a realm's token endpoint. Returns the reply as is: refusals are data here, not errors. */
  private async tokenEndpoint(realm: string, form: Record<string, string>): Promise<HttpReply> {
    const reply = await this.send(
      'POST',
      `${this.base}/realms/${seg(realm)}/protocol/openid-connect/token`,
      { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      new URLSearchParams(form).toString(),
    );
    if (reply.status >= 500 || reply.status === 429) {
      throw new ProviderError(`keycloak: token endpoint answered ${reply.status}`, {
        retriable: true,
        provider: this.name,
        details: { status: reply.status },
        ...retryAfterOf(reply),
      });
    }
    return reply;
  }

  /** An Admin REST call: JSON in and out, one re-authentication on 401, ProviderError on any failure. */
  private async admin(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<unknown> {
    const url = `${this.base}${path}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let reply: HttpReply | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const token = await this.adminToken(attempt > 0);
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
      };
      if (payload !== undefined) headers['content-type'] = 'application/json';
      reply = await this.send(method, url, headers, payload);
      if (reply.status !== 401) break;
    }
    if (!reply) throw this.permanent(`${method} ${path}: no reply`);
    if (reply.status >= 200 && reply.status < 300) return parseJson(reply.text);
    const retriable = reply.status >= 500 || reply.status === 429 || reply.status === 408;
    const what =
      reply.status === 404
        ? 'not found'
        : reply.status === 403
          ? 'forbidden (the admin lacks realm-management rights)'
          : reply.status === 401
            ? 'unauthorized'
            : `HTTP ${reply.status}`;
    throw new ProviderError(`keycloak: ${method} ${path}: ${what} ${reply.text.slice(0, 200)}`.trim(), {
      retriable,
      provider: this.name,
      details: { status: reply.status },
      ...retryAfterOf(reply),
    });
  }

  private async tryGet<T>(path: string): Promise<T | null> {
    try {
      return (await this.admin('GET', path)) as T;
    } catch (err) {
      if (err instanceof ProviderError && err.details?.status === 404) return null;
      throw err;
    }
  }
}

function secretIntents(rep: ClientRep): { actionId: string; createdBefore: string }[] {
  const raw = rep.attributes?.[SECRET_ACTIONS_ATTRIBUTE] ?? '';
  return raw
    .split(' ')
    .filter(Boolean)
    .map((x) => {
      const at = x.lastIndexOf('@');
      return { actionId: decodeURIComponent(x.slice(0, at)), createdBefore: x.slice(at + 1) };
    });
}

function retryAfterOf(reply: HttpReply): { retryAfterMs?: number } {
  return reply.retryAfterMs !== undefined ? { retryAfterMs: reply.retryAfterMs } : {};
}

function realmPath(realm: string): string {
  return `/admin/realms/${seg(realm)}`;
}

function subjectUserId(target: Target): string | null {
  return target.kind === 'user' ? target.userId : target.saUserId;
}

function describe(target: Target): string {
  return target.kind === 'user' ? `user ${target.username}` : `client ${target.clientId}`;
}

function stepUpAction(a: ProviderAction): string {
  return typeof a.args.requiredAction === 'string' && a.args.requiredAction !== ''
    ? a.args.requiredAction
    : DEFAULT_STEP_UP;
}

function oauthError(text: string): string {
  const body = parseJson(text) as { error?: string; error_description?: string } | string | undefined;
  if (body && typeof body === 'object')
    return [body.error, body.error_description].filter(Boolean).join(': ');
  return typeof body === 'string' ? body.slice(0, 120) : '';
}

// ---------------------------------------------------------------- registry entry

const Secret = z.string().min(1).optional();

/** A `type: keycloak` entry of the providers file (docs/providers.md). */
export const KeycloakEntry = z
  .object({
    baseUrl: z.url(),
    adminRealm: z.string().min(1).default('master'),
    clientId: z.string().min(1).optional(),
    clientSecret: Secret,
    clientSecretFile: Secret,
    clientSecretEnv: Secret,
    username: z.string().min(1).optional(),
    password: Secret,
    passwordFile: Secret,
    passwordEnv: Secret,
    defaultRealm: z.string().min(1).optional(),
    timeoutMs: z.number().int().min(100).max(300_000).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    const passwords = [v.password, v.passwordFile, v.passwordEnv].filter(Boolean).length;
    const secrets = [v.clientSecret, v.clientSecretFile, v.clientSecretEnv].filter(Boolean).length;
    if (v.username && passwords === 0)
      ctx.addIssue({ code: 'custom', message: 'username needs password, passwordFile or passwordEnv' });
    if (!v.username && passwords > 0) ctx.addIssue({ code: 'custom', message: 'password needs username' });
    if (!v.username && secrets === 0) {
      ctx.addIssue({
        code: 'custom',
        message:
          'configure username + password (password grant) or clientId + clientSecret (client_credentials)',
      });
    }
    if (!v.username && secrets > 0 && !v.clientId)
      ctx.addIssue({ code: 'custom', message: 'clientSecret needs clientId' });
    if (passwords > 1)
      ctx.addIssue({ code: 'custom', message: 'password, passwordFile and passwordEnv are exclusive' });
    if (secrets > 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'clientSecret, clientSecretFile and clientSecretEnv are exclusive',
      });
    }
  });
export type KeycloakEntry = z.infer<typeof KeycloakEntry>;

const KC_TOKENS =
  "access tokens already issued stay valid until they expire (the realm's access-token lifespan, Keycloak default 5 min)";
const KC_SESSIONS = 'ended sessions cannot be restored; users sign in again';
const KC_CONSENTS =
  'revoked refresh tokens, offline tokens and consents cannot be restored; users consent again';

/** What each Keycloak action can undo; the same words revert() reports, with the live lifespans. */
const KEYCLOAK_ACTIONS: Record<ActionType, ActionCapability> = {
  revoke_sessions: { reversibility: 'partially', residue: [KC_SESSIONS, KC_TOKENS] },
  revoke_tokens: { reversibility: 'partially', residue: [KC_CONSENTS, KC_SESSIONS, KC_TOKENS] },
  revoke_oauth_grant: { reversibility: 'partially', residue: [KC_CONSENTS, KC_SESSIONS, KC_TOKENS] },
  force_step_up: {
    reversibility: 'partially',
    residue: ['the required action is removed again, but the sessions it ended are not restored', KC_TOKENS],
  },
  disable_account: {
    reversibility: 'partially',
    residue: ['the account is enabled again, but the sessions the disable ended are not restored', KC_TOKENS],
  },
  disable_service_account: {
    reversibility: 'partially',
    residue: [
      'the client is enabled again; tokens issued before the disable stay refused (client not-before) and it must request new ones',
    ],
  },
  rotate_credential: {
    reversibility: 'irreversible',
    residue: ['a rotated client secret cannot come back; every consumer needs the new secret'],
  },
  quarantine: {
    reversibility: 'partially',
    residue: ['the role or group comes back; tokens issued while quarantined lack it until refreshed'],
  },
  jit_reissue: {
    reversibility: 'partially',
    residue: [
      'a re-issued client secret cannot be withdrawn and the previous one cannot be restored',
      'a password changed at sign-in in the meantime cannot be restored',
    ],
  },
};

export const keycloakProvider: ProviderDefinition<KeycloakEntry> = {
  name: 'keycloak',
  configSchema: KeycloakEntry,
  actions: KEYCLOAK_ACTIONS,
  create(c, deps) {
    const password = readSecret(
      { value: c.password, file: c.passwordFile, env: c.passwordEnv },
      'keycloak password',
    );
    const clientSecret = readSecret(
      { value: c.clientSecret, file: c.clientSecretFile, env: c.clientSecretEnv },
      'keycloak clientSecret',
    );
    return new KeycloakProvider({
      ...(deps.name ? { name: deps.name } : {}),
      baseUrl: c.baseUrl,
      adminRealm: c.adminRealm,
      ...(c.clientId ? { clientId: c.clientId } : {}),
      ...(clientSecret ? { clientSecret } : {}),
      ...(c.username ? { username: c.username } : {}),
      ...(password ? { password } : {}),
      ...(c.defaultRealm ? { defaultRealm: c.defaultRealm } : {}),
      ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}),
    });
  },
};
