import { createHash, randomBytes } from 'node:crypto';
import {
  AttachRolePolicyCommand,
  AttachUserPolicyCommand,
  CreateLoginProfileCommand,
  DeleteLoginProfileCommand,
  DeleteRolePolicyCommand,
  DeleteUserPolicyCommand,
  DetachRolePolicyCommand,
  DetachUserPolicyCommand,
  GetAccessKeyLastUsedCommand,
  GetLoginProfileCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  GetUserCommand,
  GetUserPolicyCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListAttachedRolePoliciesCommand,
  ListAttachedUserPoliciesCommand,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { z } from 'zod';
import { ProviderError, parseRetryAfter, RollbackRefusedError } from '../../../platform/errors.ts';
import type { ActionType } from '../../../schemas/events.ts';
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
 * AWS IAM through the AWS SDK v3 (IAM is global: one endpoint, region us-east-1 for signing).
 *
 * Identity mapping (once, in capture, recorded as prior.resolved): `identity.id` may be an access key
 * id (AKIA…/ASIA…: its user, found with GetAccessKeyLastUsed), a user or role ARN, an STS
 * assumed-role ARN (its role), or a bare name: a role for `workload`, a user otherwise.
 *
 * Actions:
 *   revoke_tokens            deactivate the access key (or every active key of the user)
 *   disable_service_account  deactivate every active key and attach the deny-all policy
 *   quarantine               attach the deny-all policy (user or role)
 *   disable_account          attach the deny-all policy and delete the console login profile
 *   revoke_sessions          inline deny on aws:TokenIssueTime earlier than the capture (AWS console's
 *                            "revoke active sessions"): every session issued before it is refused
 * Every apply is a set of idempotent writes derived from the prior state alone (the deny's cut-off is the
 * capture time, not the apply time), so a retry or a second executor writes the same thing again.
 *
 * Rollback restores the captured state: keys Active again, deny-all detached (unless it was attached
 * before), a login profile created again — with a fresh random password nobody knows and a reset
 * required, since the old password cannot come back (residue). The token-issue-time deny is refused
 * until every session it cut off has expired on its own: deleting it earlier revives the stolen sessions.
 */
export interface AwsConfig {
  name?: string;
  /** e.g. http://127.0.0.1:15000 (moto); default: the SDK's own (https://iam.amazonaws.com). */
  endpoint?: string;
  region?: string;
  /** Static credentials; without them the SDK's default chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** The managed policy attached to deny everything (default arn:aws:iam::aws:policy/AWSDenyAll). */
  denyAllPolicyArn?: string;
  /** The longest session AWS can have issued to a user (GetSessionToken: 36 h), for the revoke gate. */
  userMaxSessionSeconds?: number;
  timeoutMs?: number;
  now?: () => number;
}

export const DEFAULT_DENY_ALL = 'arn:aws:iam::aws:policy/AWSDenyAll';
/** Inline policy names carry this prefix and a hash of the action id: one policy per action. */
export const REVOKE_POLICY_PREFIX = 'TourniquetRevokeOlderSessions-';
const USER_MAX_SESSION_SECONDS = 36 * 3600;

type Resolved =
  | { kind: 'user'; userName: string; userId: string; arn: string; accessKeyId?: string }
  | { kind: 'role'; roleName: string; roleId: string; arn: string; maxSessionSeconds: number };

export interface AwsPrior {
  provider: 'aws';
  action: ActionType;
  /** The IAM object the identity resolved to: every later phase acts on exactly this one. */
  resolved: Resolved;
  capturedAt: string;
  /** Keys in scope and their status before the action. */
  keys: { id: string; status: string }[];
  denyAllAttached: boolean;
  /** Console access: null when the user had no login profile (or the target is a role). */
  loginProfile: { passwordResetRequired: boolean } | null;
  /** revoke_sessions: the inline policy's name. */
  revokePolicy?: string;
}

function isPrior(p: PriorState): p is PriorState & AwsPrior {
  return p.provider === 'aws' && typeof p.resolved === 'object' && p.resolved !== null;
}

const ACTIONS_WITH_DENY_ALL: ReadonlySet<ActionType> = new Set([
  'quarantine',
  'disable_account',
  'disable_service_account',
]);
const ACTIONS_WITH_KEYS: ReadonlySet<ActionType> = new Set(['revoke_tokens', 'disable_service_account']);

export class AwsProvider implements IdentityProvider {
  readonly name: string;
  private readonly iam: IAMClient;
  private readonly denyAll: string;
  private readonly userMaxSessionSeconds: number;
  private readonly now: () => number;

  constructor(cfg: AwsConfig) {
    this.name = cfg.name ?? 'aws';
    this.denyAll = cfg.denyAllPolicyArn ?? DEFAULT_DENY_ALL;
    this.userMaxSessionSeconds = cfg.userMaxSessionSeconds ?? USER_MAX_SESSION_SECONDS;
    this.now = cfg.now ?? Date.now;
    this.iam = new IAMClient({
      region: cfg.region ?? 'us-east-1',
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      ...(cfg.accessKeyId && cfg.secretAccessKey
        ? {
            credentials: {
              accessKeyId: cfg.accessKeyId,
              secretAccessKey: cfg.secretAccessKey,
              ...(cfg.sessionToken ? { sessionToken: cfg.sessionToken } : {}),
            },
          }
        : {}),
      // The executor retries (with its backoff, Retry-After and circuit breaker): one attempt here.
      maxAttempts: 1,
      requestHandler: { requestTimeout: cfg.timeoutMs ?? 10_000, connectionTimeout: cfg.timeoutMs ?? 10_000 },
    });
  }

  supports(action: ActionType): boolean {
    return AWS_ACTIONS[action] !== undefined;
  }

  // ---------------------------------------------------------------- capture

  async capture(a: ProviderAction): Promise<PriorState> {
    this.check(a.action);
    const resolved = await this.resolve(a);
    const prior: AwsPrior = {
      provider: 'aws',
      action: a.action,
      resolved,
      capturedAt: new Date(this.now()).toISOString(),
      keys: ACTIONS_WITH_KEYS.has(a.action) ? await this.keysInScope(resolved) : [],
      denyAllAttached: await this.denyAllAttached(resolved),
      loginProfile: a.action === 'disable_account' ? await this.loginProfile(resolved) : null,
    };
    if (a.action === 'revoke_sessions') prior.revokePolicy = revokePolicyName(a.actionId);
    if (a.action === 'revoke_tokens' && prior.keys.length === 0)
      throw this.permanent(`revoke_tokens: ${describe(resolved)} has no access key`);
    return prior as unknown as PriorState;
  }

  private async resolve(a: ProviderAction): Promise<Resolved> {
    const id = a.identity.id;
    if (/^(AKIA|ASIA)[A-Z0-9]{12,}$/.test(id)) {
      const used = await this.call(`access key ${id}`, () =>
        this.iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: id })),
      );
      if (!used.UserName) throw this.permanent(`access key ${id} belongs to no IAM user`);
      return { ...(await this.user(used.UserName)), accessKeyId: id };
    }
    const arn = /^arn:aws[a-z-]*:(iam|sts)::\d{12}:(user|role|assumed-role)\/(.+)$/.exec(id);
    if (arn) {
      const [, , kind, rest] = arn;
      if (kind === 'user') return this.user(rest!.split('/').pop()!);
      // role/path/name, or assumed-role/name/session
      const roleName = kind === 'role' ? rest!.split('/').pop()! : rest!.split('/')[0]!;
      return this.role(roleName);
    }
    if (id.startsWith('arn:'))
      throw this.permanent(`unsupported ARN ${id}: a user, role or assumed-role ARN`);
    return a.identity.type === 'workload' ? this.role(id) : this.user(id);
  }

  private async user(userName: string): Promise<Extract<Resolved, { kind: 'user' }>> {
    const u = (
      await this.call(`user ${userName}`, () => this.iam.send(new GetUserCommand({ UserName: userName })))
    ).User!;
    return { kind: 'user', userName: u.UserName!, userId: u.UserId!, arn: u.Arn! };
  }

  private async role(roleName: string): Promise<Resolved> {
    const r = (
      await this.call(`role ${roleName}`, () => this.iam.send(new GetRoleCommand({ RoleName: roleName })))
    ).Role!;
    return {
      kind: 'role',
      roleName: r.RoleName!,
      roleId: r.RoleId!,
      arn: r.Arn!,
      maxSessionSeconds: r.MaxSessionDuration ?? 3600,
    };
  }

  private async keysInScope(r: Resolved): Promise<{ id: string; status: string }[]> {
    if (r.kind !== 'user') return [];
    const out = await this.call(describe(r), () =>
      this.iam.send(new ListAccessKeysCommand({ UserName: r.userName })),
    );
    const keys = (out.AccessKeyMetadata ?? []).map((k) => ({ id: k.AccessKeyId!, status: k.Status! }));
    return r.accessKeyId ? keys.filter((k) => k.id === r.accessKeyId) : keys;
  }

  private async denyAllAttached(r: Resolved): Promise<boolean> {
    const out =
      r.kind === 'user'
        ? await this.call(describe(r), () =>
            this.iam.send(new ListAttachedUserPoliciesCommand({ UserName: r.userName })),
          )
        : await this.call(describe(r), () =>
            this.iam.send(new ListAttachedRolePoliciesCommand({ RoleName: r.roleName })),
          );
    return (out.AttachedPolicies ?? []).some((p) => p.PolicyArn === this.denyAll);
  }

  private async loginProfile(r: Resolved): Promise<{ passwordResetRequired: boolean } | null> {
    if (r.kind !== 'user') return null;
    const out = await this.callOrMissing(describe(r), () =>
      this.iam.send(new GetLoginProfileCommand({ UserName: r.userName })),
    );
    return out?.LoginProfile
      ? { passwordResetRequired: out.LoginProfile.PasswordResetRequired ?? false }
      : null;
  }

  private async revokePolicyPresent(r: Resolved, policyName: string): Promise<boolean> {
    const found = await this.callOrMissing<unknown>(describe(r), () =>
      r.kind === 'user'
        ? this.iam.send(new GetUserPolicyCommand({ UserName: r.userName, PolicyName: policyName }))
        : this.iam.send(new GetRolePolicyCommand({ RoleName: r.roleName, PolicyName: policyName })),
    );
    return found !== null;
  }

  // ---------------------------------------------------------------- apply

  async apply(a: ProviderAction, priorState: PriorState): Promise<ApplyResult> {
    const prior = this.prior(priorState, a);
    const r = prior.resolved;
    const changes: string[] = [];
    if (ACTIONS_WITH_KEYS.has(a.action)) await this.setKeys(r, prior.keys, 'Inactive', changes);
    if (ACTIONS_WITH_DENY_ALL.has(a.action)) await this.attachDenyAll(r, changes);
    if (a.action === 'disable_account' && prior.loginProfile) await this.deleteLoginProfile(r, changes);
    if (a.action === 'revoke_sessions') await this.putRevokePolicy(r, prior, changes);
    return { resolvedArn: r.arn, changes, noop: changes.length === 0 };
  }

  private async setKeys(
    r: Resolved,
    keys: { id: string; status: string }[],
    status: 'Active' | 'Inactive',
    changes: string[],
  ): Promise<void> {
    if (r.kind !== 'user') return;
    const now = new Map((await this.keysInScope(r)).map((k) => [k.id, k.status]));
    for (const k of keys) {
      if (!now.has(k.id)) continue; // deleted since: nothing to change, said by verify/revert
      if (now.get(k.id) === status) continue;
      await this.call(`access key ${k.id}`, () =>
        this.iam.send(
          new UpdateAccessKeyCommand({ UserName: r.userName, AccessKeyId: k.id, Status: status }),
        ),
      );
      changes.push(`access key ${k.id} of ${r.userName} set ${status}`);
    }
  }

  private async attachDenyAll(r: Resolved, changes: string[]): Promise<void> {
    if (await this.denyAllAttached(r)) return;
    if (r.kind === 'user')
      await this.call(describe(r), () =>
        this.iam.send(new AttachUserPolicyCommand({ UserName: r.userName, PolicyArn: this.denyAll })),
      );
    else
      await this.call(describe(r), () =>
        this.iam.send(new AttachRolePolicyCommand({ RoleName: r.roleName, PolicyArn: this.denyAll })),
      );
    changes.push(`${this.denyAll} attached to ${describe(r)}`);
  }

  private async detachDenyAll(r: Resolved): Promise<boolean> {
    if (!(await this.denyAllAttached(r))) return false;
    if (r.kind === 'user')
      await this.call(describe(r), () =>
        this.iam.send(new DetachUserPolicyCommand({ UserName: r.userName, PolicyArn: this.denyAll })),
      );
    else
      await this.call(describe(r), () =>
        this.iam.send(new DetachRolePolicyCommand({ RoleName: r.roleName, PolicyArn: this.denyAll })),
      );
    return true;
  }

  private async deleteLoginProfile(r: Resolved, changes: string[]): Promise<void> {
    if (r.kind !== 'user') return;
    const gone =
      (await this.callOrMissing(describe(r), () =>
        this.iam.send(new DeleteLoginProfileCommand({ UserName: r.userName })),
      )) === null;
    if (!gone) changes.push(`console login profile of ${r.userName} deleted`);
  }

  private async putRevokePolicy(r: Resolved, prior: AwsPrior, changes: string[]): Promise<void> {
    const name = prior.revokePolicy!;
    if (await this.revokePolicyPresent(r, name)) return;
    const doc = JSON.stringify(revokeOlderSessionsPolicy(prior.capturedAt));
    if (r.kind === 'user')
      await this.call(describe(r), () =>
        this.iam.send(
          new PutUserPolicyCommand({ UserName: r.userName, PolicyName: name, PolicyDocument: doc }),
        ),
      );
    else
      await this.call(describe(r), () =>
        this.iam.send(
          new PutRolePolicyCommand({ RoleName: r.roleName, PolicyName: name, PolicyDocument: doc }),
        ),
      );
    changes.push(`${describe(r)}: sessions issued before ${prior.capturedAt} denied (inline policy ${name})`);
  }

  // ---------------------------------------------------------------- isApplied / verify

  async isApplied(a: ProviderAction, priorState: PriorState): Promise<boolean> {
    return (await this.probes(a, this.prior(priorState, a))).every((p) => p.ok);
  }

  async verify(a: ProviderAction, priorState: PriorState, _result?: ApplyResult): Promise<Probe[]> {
    return this.probes(a, this.prior(priorState, a));
  }

  /** The effect, read back through IAM: each part of the action is one probe. */
  private async probes(a: ProviderAction, prior: AwsPrior): Promise<Probe[]> {
    const r = prior.resolved;
    const probes: Probe[] = [];
    if (ACTIONS_WITH_KEYS.has(a.action)) {
      const now = new Map((await this.keysInScope(r)).map((k) => [k.id, k.status]));
      for (const k of prior.keys) {
        const s = now.get(k.id);
        probes.push({
          probe: `access_key_inactive:${k.id}`,
          ok: s === undefined || s === 'Inactive',
          detail: s === undefined ? `access key ${k.id} no longer exists` : `access key ${k.id} is ${s}`,
        });
      }
    }
    if (ACTIONS_WITH_DENY_ALL.has(a.action)) {
      const attached = await this.denyAllAttached(r);
      probes.push({
        probe: 'deny_all_attached',
        ok: attached,
        detail: `${this.denyAll} ${attached ? 'is' : 'is not'} attached to ${describe(r)}`,
      });
    }
    if (a.action === 'disable_account' && prior.loginProfile) {
      const lp = await this.loginProfile(r);
      probes.push({
        probe: 'login_profile_deleted',
        ok: lp === null,
        detail: lp === null ? 'no console login profile' : `${describe(r)} still has a console login profile`,
      });
    }
    if (a.action === 'revoke_sessions') {
      const present = await this.revokePolicyPresent(r, prior.revokePolicy!);
      probes.push({
        probe: 'older_sessions_denied',
        ok: present,
        detail: present
          ? `inline policy ${prior.revokePolicy} denies sessions issued before ${prior.capturedAt}`
          : `inline policy ${prior.revokePolicy} is missing from ${describe(r)}`,
      });
    }
    return probes;
  }

  // ---------------------------------------------------------------- revert

  async revert(a: ProviderAction, priorState: PriorState, _result?: ApplyResult): Promise<RevertResult> {
    const prior = this.prior(priorState, a);
    const r = prior.resolved;
    if (a.action === 'revoke_sessions') return this.revertRevoke(a, prior);
    const restored: string[] = [];
    const residue: string[] = [];
    if (ACTIONS_WITH_KEYS.has(a.action)) {
      const wereActive = prior.keys.filter((k) => k.status === 'Active');
      const present = new Set((await this.keysInScope(r)).map((k) => k.id));
      await this.setKeys(r, wereActive, 'Active', []);
      for (const k of wereActive) {
        if (present.has(k.id)) restored.push(`access key ${k.id} Active again`);
        else residue.push(`access key ${k.id} was deleted in the meantime and cannot be reactivated`);
      }
    }
    if (ACTIONS_WITH_DENY_ALL.has(a.action)) {
      if (prior.denyAllAttached)
        restored.push(`${this.denyAll} left attached: it was attached before the action`);
      else {
        await this.detachDenyAll(r);
        restored.push(`${this.denyAll} detached from ${describe(r)}`);
      }
    }
    if (a.action === 'disable_account' && prior.loginProfile) {
      await this.recreateLoginProfile(r, restored);
      residue.push(
        `the console password of ${describe(r)} cannot be restored: a login profile exists again with a random password nobody knows; an administrator must set a new password and send it to the user (reset required at sign-in)`,
      );
    }
    return { restored, residue };
  }

  private async recreateLoginProfile(r: Resolved, restored: string[]): Promise<void> {
    if (r.kind !== 'user') return;
    if ((await this.loginProfile(r)) !== null) {
      restored.push(`console login profile of ${r.userName} present`);
      return;
    }
    // The password is never recorded: it only has to satisfy the account's password policy.
    const password = `${randomBytes(18).toString('base64url')}aA1!`;
    await this.call(describe(r), () =>
      this.iam.send(
        new CreateLoginProfileCommand({
          UserName: r.userName,
          Password: password,
          PasswordResetRequired: true,
        }),
      ),
    );
    restored.push(`console login profile of ${r.userName} created again (new password, reset required)`);
  }

  /**
   * The token-issue-time deny cut off every session issued before the capture, the stolen ones among
   * them. Deleting it would make them valid again, so it stays until the longest of them has expired.
   */
  private async revertRevoke(a: ProviderAction, prior: AwsPrior): Promise<RevertResult> {
    const r = prior.resolved;
    const maxSeconds = r.kind === 'role' ? r.maxSessionSeconds : this.userMaxSessionSeconds;
    const safeAt = Date.parse(prior.capturedAt) + maxSeconds * 1000;
    if (this.now() < safeAt) {
      throw new RollbackRefusedError({
        provider: this.name,
        action: a.action,
        reason: `deleting inline policy ${prior.revokePolicy} from ${describe(r)} would make every session issued before ${prior.capturedAt} valid again, the stolen ones included; they expire on their own by ${new Date(safeAt).toISOString()} (maximum session ${maxSeconds / 3600} h), after which the policy can be removed; new sessions are not affected`,
      });
    }
    const name = prior.revokePolicy!;
    await this.callOrMissing(describe(r), () =>
      r.kind === 'user'
        ? this.iam.send(new DeleteUserPolicyCommand({ UserName: r.userName, PolicyName: name }))
        : this.iam.send(new DeleteRolePolicyCommand({ RoleName: r.roleName, PolicyName: name })),
    );
    return {
      restored: [`inline policy ${name} removed from ${describe(r)} (every session it denied has expired)`],
      residue: ['the sessions it cut off had expired; their holders sign in again'],
    };
  }

  // ---------------------------------------------------------------- helpers

  private check(action: ActionType): void {
    if (!this.supports(action))
      throw this.permanent(`${action} is not an AWS IAM action Tourniquet performs`);
  }

  private prior(p: PriorState, a: ProviderAction): AwsPrior {
    this.check(a.action);
    if (!isPrior(p)) throw this.permanent('prior state was not captured by the AWS provider');
    return p as unknown as AwsPrior;
  }

  private permanent(message: string, details?: Record<string, unknown>): ProviderError {
    return new ProviderError(`aws: ${message}`, {
      retriable: false,
      provider: this.name,
      ...(details ? { details } : {}),
    });
  }

  /** One IAM call; every failure becomes a ProviderError classified by what AWS answered. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.classify(err, what);
    }
  }

  /** As call, but an absent object (NoSuchEntity, 404) is null instead of an error. */
  private async callOrMissing<T>(what: string, fn: () => Promise<T>): Promise<T | null> {
    try {
      return await this.call(what, fn);
    } catch (err) {
      if (err instanceof ProviderError && err.details?.awsError === 'NoSuchEntity') return null;
      throw err;
    }
  }

  private classify(err: unknown, what: string): ProviderError {
    const e = err as {
      name?: string;
      message?: string;
      Code?: string;
      $metadata?: { httpStatusCode?: number };
      $response?: { headers?: Record<string, string> };
      $retryable?: unknown;
    };
    const status = e.$metadata?.httpStatusCode;
    const code = (e.name ?? e.Code ?? 'Error').replace(/Exception$/, '');
    const throttled = status === 429 || /Throttl|RequestLimitExceeded|TooManyRequests/.test(code);
    // No HTTP status at all: the request never got an answer (refused, reset, timed out).
    const retriable = status === undefined || status >= 500 || throttled || status === 408;
    const retryAfterMs = parseRetryAfter(e.$response?.headers?.['retry-after'], this.now());
    return new ProviderError(`aws: ${what}: ${code}${e.message ? `: ${e.message}` : ''}`, {
      retriable,
      provider: this.name,
      cause: err,
      details: { awsError: code, ...(status !== undefined ? { status } : {}) },
      ...(retriable && retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
}

/** The policy the AWS console's "Revoke active sessions" attaches, with our cut-off. */
function revokeOlderSessionsPolicy(issuedBefore: string): Record<string, unknown> {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Deny',
        Action: ['*'],
        Resource: ['*'],
        Condition: { DateLessThan: { 'aws:TokenIssueTime': issuedBefore } },
      },
    ],
  };
}

function revokePolicyName(actionId: string): string {
  return REVOKE_POLICY_PREFIX + createHash('sha256').update(actionId).digest('hex').slice(0, 16);
}

function describe(r: Resolved): string {
  return r.kind === 'user' ? `user ${r.userName}` : `role ${r.roleName}`;
}

// ---------------------------------------------------------------- registry entry

/** What each AWS action can undo (docs/providers.md, AWS section). */
const AWS_ACTIONS: Partial<Record<ActionType, ActionCapability>> = {
  revoke_tokens: { reversibility: 'reversible', residue: [] },
  disable_service_account: { reversibility: 'reversible', residue: [] },
  quarantine: { reversibility: 'reversible', residue: [] },
  disable_account: {
    reversibility: 'partially',
    residue: [
      'the console password cannot be restored: the login profile comes back with a new random password, and an administrator must set and send a new one',
    ],
  },
  revoke_sessions: {
    reversibility: 'irreversible',
    residue: [
      'the aws:TokenIssueTime deny stays until every session it cut off has expired (role maximum session duration, up to 12 h; 36 h for user session tokens): removing it earlier would revive the stolen sessions',
    ],
  },
};

const Secret = z.string().min(1).optional();

export const AwsEntry = z
  .object({
    endpoint: z.url().optional(),
    region: z.string().min(1).default('us-east-1'),
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: Secret,
    secretAccessKeyFile: Secret,
    secretAccessKeyEnv: Secret,
    denyAllPolicyArn: z.string().startsWith('arn:').optional(),
    userMaxSessionSeconds: z.number().int().min(900).max(129_600).optional(),
    timeoutMs: z.number().int().min(100).max(300_000).optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    const secrets = [v.secretAccessKey, v.secretAccessKeyFile, v.secretAccessKeyEnv].filter(Boolean).length;
    if (secrets > 1)
      ctx.addIssue({ code: 'custom', message: 'secretAccessKey, …File and …Env are exclusive' });
    if (Boolean(v.accessKeyId) !== secrets > 0)
      ctx.addIssue({
        code: 'custom',
        message: 'accessKeyId and a secretAccessKey go together (or neither: the SDK default chain)',
      });
  });
export type AwsEntry = z.infer<typeof AwsEntry>;

export const awsProvider: ProviderDefinition<AwsEntry> = {
  name: 'aws',
  configSchema: AwsEntry,
  actions: AWS_ACTIONS,
  create(c, deps) {
    const secretAccessKey = readSecret(
      { value: c.secretAccessKey, file: c.secretAccessKeyFile, env: c.secretAccessKeyEnv },
      'aws secretAccessKey',
    );
    return new AwsProvider({
      ...(deps.name ? { name: deps.name } : {}),
      ...(c.endpoint ? { endpoint: c.endpoint } : {}),
      region: c.region,
      ...(c.accessKeyId && secretAccessKey ? { accessKeyId: c.accessKeyId, secretAccessKey } : {}),
      ...(c.denyAllPolicyArn ? { denyAllPolicyArn: c.denyAllPolicyArn } : {}),
      ...(c.userMaxSessionSeconds ? { userMaxSessionSeconds: c.userMaxSessionSeconds } : {}),
      ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}),
      now: deps.now,
    });
  },
};
