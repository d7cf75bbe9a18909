import { createHmac } from 'node:crypto';
import { type Dispatcher, request } from 'undici';
import { z } from 'zod';
import { ProviderError, parseRetryAfter } from '../../../platform/errors.ts';
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
import { requireSecret } from './secrets.ts';

/**
 * A provider for tools Tourniquet does not speak natively: each phase is one signed HTTP POST to a
 * receiver that performs it.
 *
 * Request body (JSON): { actionId, action, identity, args, phase, sentAt, prior?, result? }
 *   phase: capture | apply | is_applied | verify | revert; prior from capture on every later phase, result
 *   of apply on verify and revert; sentAt (unix seconds) is inside the signed body, so a captured request
 *   cannot be replayed later under a fresh timestamp.
 * Headers:
 *   Idempotency-Key: the action id for apply (the receiver must apply one action id once, and answer a
 *     repeat with the first result); `${actionId}:${phase}` for every other phase.
 *   X-Tourniquet-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the shared secret>
 *   X-Tourniquet-Timestamp: unix seconds (equal to body.sentAt)
 * Reply (2xx, JSON): capture → the prior state (object); apply → the result (object);
 *   is_applied → { applied: boolean }; verify → Probe[] or { probes: Probe[] };
 *   revert → { restored: string[], residue: string[] }.
 * Errors: network failures, timeouts, 408, 409 (same key still in flight), 429 and 5xx are retriable;
 *   every other status and any reply that breaks the contract is permanent.
 */
export interface WebhookConfig {
  url: string;
  /** Shared HMAC secret (at least 16 characters). */
  secret: string;
  /** Provider name recorded in events (default webhook). */
  name?: string;
  /** Actions the receiver implements (default: all). */
  actions?: readonly ActionType[];
  /** Per-request timeout (default 10s). */
  timeoutMs?: number;
  /** Extra headers (e.g. a receiver-specific API key). */
  headers?: Record<string, string>;
  dispatcher?: Dispatcher;
  /** Clock for the timestamp (ms); injectable for tests. */
  now?: () => number;
}

export type WebhookPhase = 'capture' | 'apply' | 'is_applied' | 'verify' | 'revert';

const SIGNATURE_HEADER = 'x-tourniquet-signature';
const TIMESTAMP_HEADER = 'x-tourniquet-timestamp';
const IDEMPOTENCY_HEADER = 'idempotency-key';

/** `sha256=<hex>` over the exact body bytes. Receivers recompute it and compare in constant time. */
export function signBody(secret: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}

export function idempotencyKey(actionId: string, phase: WebhookPhase): string {
  return phase === 'apply' ? actionId : `${actionId}:${phase}`;
}

const JsonObject = z.record(z.string(), z.unknown());
const ProbeSchema = z.object({ probe: z.string(), ok: z.boolean(), detail: z.string() });
const ProbesReply = z.union([z.array(ProbeSchema), z.object({ probes: z.array(ProbeSchema) })]);
const RevertReply = z.object({ restored: z.array(z.string()), residue: z.array(z.string()) });
const AppliedReply = z.object({ applied: z.boolean() });

export class WebhookProvider implements IdentityProvider {
  readonly name: string;
  private readonly cfg: WebhookConfig;
  private readonly actions: ReadonlySet<string>;
  private readonly timeoutMs: number;

  constructor(cfg: WebhookConfig) {
    this.name = cfg.name ?? 'webhook';
    if (!cfg.secret || cfg.secret.length < 16) {
      throw new ProviderError('webhook: the shared secret must be at least 16 characters', {
        retriable: false,
        provider: this.name,
      });
    }
    const u = new URL(cfg.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ProviderError(`webhook: unsupported URL scheme ${u.protocol}`, {
        retriable: false,
        provider: this.name,
      });
    }
    this.cfg = cfg;
    this.actions = new Set(cfg.actions ?? ACTION_TYPES);
    this.timeoutMs = cfg.timeoutMs ?? 10_000;
  }

  supports(action: ActionType): boolean {
    return this.actions.has(action);
  }

  async capture(a: ProviderAction): Promise<PriorState> {
    return this.parse('capture', JsonObject, await this.call(a, 'capture'));
  }

  async apply(a: ProviderAction, prior: PriorState): Promise<ApplyResult> {
    return this.parse('apply', JsonObject, await this.call(a, 'apply', { prior }));
  }

  async isApplied(a: ProviderAction, prior: PriorState): Promise<boolean> {
    return this.parse('is_applied', AppliedReply, await this.call(a, 'is_applied', { prior })).applied;
  }

  async verify(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<Probe[]> {
    const reply = this.parse('verify', ProbesReply, await this.call(a, 'verify', { prior, result }));
    return Array.isArray(reply) ? reply : reply.probes;
  }

  async revert(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<RevertResult> {
    return this.parse('revert', RevertReply, await this.call(a, 'revert', { prior, result }));
  }

  private parse<T>(phase: WebhookPhase, schema: z.ZodType<T>, body: unknown): T {
    const r = schema.safeParse(body);
    if (!r.success) {
      throw new ProviderError(
        `webhook: ${phase} reply breaks the contract: ${r.error.issues[0]?.message ?? ''}`,
        {
          retriable: false,
          provider: this.name,
          details: { phase },
        },
      );
    }
    return r.data;
  }

  private async call(
    a: ProviderAction,
    phase: WebhookPhase,
    extra: { prior?: PriorState; result?: ApplyResult } = {},
  ): Promise<unknown> {
    if (!this.supports(a.action)) {
      throw new ProviderError(`webhook: ${this.name} does not implement ${a.action}`, {
        retriable: false,
        provider: this.name,
      });
    }
    const sentAt = Math.floor((this.cfg.now ?? Date.now)() / 1000);
    const body = JSON.stringify({
      actionId: a.actionId,
      action: a.action,
      identity: a.identity,
      args: a.args,
      phase,
      sentAt,
      ...extra,
    });
    const key = idempotencyKey(a.actionId, phase);
    let status: number;
    let text: string;
    let retryAfterMs: number | undefined;
    try {
      const res = await request(this.cfg.url, {
        method: 'POST',
        headers: {
          ...(this.cfg.headers ?? {}),
          'content-type': 'application/json',
          accept: 'application/json',
          [IDEMPOTENCY_HEADER]: key,
          [SIGNATURE_HEADER]: signBody(this.cfg.secret, body),
          [TIMESTAMP_HEADER]: String(sentAt),
        },
        body,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(this.cfg.dispatcher ? { dispatcher: this.cfg.dispatcher } : {}),
      });
      status = res.statusCode;
      text = await res.body.text();
      const ra = res.headers['retry-after'];
      retryAfterMs = parseRetryAfter(typeof ra === 'string' ? ra : undefined, (this.cfg.now ?? Date.now)());
    } catch (err) {
      throw new ProviderError(`webhook: ${phase} ${a.actionId} failed: ${(err as Error).message}`, {
        retriable: true,
        provider: this.name,
        cause: err,
        details: { phase, idempotencyKey: key },
      });
    }
    if (status < 200 || status >= 300) {
      const retriable = status >= 500 || status === 429 || status === 408 || status === 409;
      throw new ProviderError(
        `webhook: ${phase} ${a.actionId}: receiver answered ${status} ${text.slice(0, 200)}`.trim(),
        {
          retriable,
          provider: this.name,
          details: { phase, status, idempotencyKey: key },
          ...(retriable && retryAfterMs !== undefined ? { retryAfterMs } : {}),
        },
      );
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError(`webhook: ${phase} reply is not JSON`, {
        retriable: false,
        provider: this.name,
        details: { phase, status },
      });
    }
  }
}

// ---------------------------------------------------------------- registry entry

/** A `type: webhook` entry of the providers file (docs/providers.md). */
export const WebhookEntry = z
  .object({
    url: z.url(),
    secret: z.string().min(16, 'the shared secret must be at least 16 characters').optional(),
    secretFile: z.string().min(1).optional(),
    secretEnv: z.string().min(1).optional(),
    actions: z.array(z.enum(ACTION_TYPES)).min(1).optional(),
    timeoutMs: z.number().int().min(100).max(300_000).optional(),
    headers: z.record(z.string(), z.string()).optional(),
  })
  .strict()
  .refine((v) => [v.secret, v.secretFile, v.secretEnv].filter(Boolean).length === 1, {
    message: 'configure exactly one of secret, secretFile, secretEnv',
  });
export type WebhookEntry = z.infer<typeof WebhookEntry>;

/**
 * The receiver does the work, so Tourniquet cannot promise more than "partially": whatever the
 * receiver's revert cannot undo, it reports as residue, which is recorded with the rollback.
 */
const WEBHOOK_CAPABILITY: ActionCapability = {
  reversibility: 'partially',
  residue: ['depends on the receiving system: its revert reply names what it could not undo'],
};

export const webhookProvider: ProviderDefinition<WebhookEntry> = {
  name: 'webhook',
  configSchema: WebhookEntry,
  actions: Object.fromEntries(ACTION_TYPES.map((a) => [a, WEBHOOK_CAPABILITY])),
  create(c, deps) {
    const secret = requireSecret({ value: c.secret, file: c.secretFile, env: c.secretEnv }, 'webhook secret');
    return new WebhookProvider({
      ...(deps.name ? { name: deps.name } : {}),
      url: c.url,
      secret,
      ...(c.actions ? { actions: c.actions } : {}),
      ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}),
      ...(c.headers ? { headers: c.headers } : {}),
      now: deps.now,
    });
  },
};
