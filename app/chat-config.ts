import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { TourniquetError } from '../platform/errors.ts';
import type { EventStore } from '../platform/eventstore/port.ts';
import { slackApi } from '../platform/slack.ts';
import { Role } from '../services/api/auth.ts';
import { RefusalLog, refusalsPathOf } from '../services/api/chat/refusals.ts';
import type { ApiDeps } from '../services/api/server.ts';
import { ChatNotifier } from '../services/chat/notifier.ts';

/**
 * Chat approvals (providers file, `chat:` block; docs/configuration.md). Every secret has an inline
 * form (use `${ENV}` interpolation) and a `…File` form; secrets are never logged.
 */
const SlackUser = z.strictObject({
  /** The Tourniquet principal this Slack user acts as (recorded as the approver). */
  principal: z.string().min(1),
  roles: z.array(Role).min(1),
});

const SlackChatConfig = z
  .strictObject({
    /** Bot token (xoxb-…) for chat.postMessage / chat.update / chat.postEphemeral. */
    botToken: z.string().min(1).optional(),
    botTokenFile: z.string().min(1).optional(),
    /** The app's signing secret: verifies interaction requests (v0 HMAC). */
    signingSecret: z.string().min(1).optional(),
    signingSecretFile: z.string().min(1).optional(),
    /** Channel id the approval requests go to. */
    channel: z.string().min(1),
    /** Slack Web API base URL (tests and proxies); default https://slack.com/api/. */
    apiUrl: z.url().optional(),
    /** Slack user id (U…) -> Tourniquet principal and roles. A user not listed is refused. */
    users: z.record(z.string().regex(/^[UW][A-Z0-9]+$/, 'a Slack user id (U… or W…)'), SlackUser),
  })
  .refine((v) => Boolean(v.botToken) !== Boolean(v.botTokenFile), {
    message: 'configure exactly one of botToken, botTokenFile',
  })
  .refine((v) => Boolean(v.signingSecret) !== Boolean(v.signingSecretFile), {
    message: 'configure exactly one of signingSecret, signingSecretFile',
  });

const WebhookChatConfig = z
  .strictObject({
    /** Receives approval requests and updates as signed JSON (Teams via a workflow, or anything else). */
    url: z.url(),
    /** HMAC-SHA256 key for the X-Tourniquet-Signature header. */
    secret: z.string().min(16).optional(),
    secretFile: z.string().min(1).optional(),
    timeoutMs: z.number().int().positive().default(10_000),
  })
  .refine((v) => Boolean(v.secret) !== Boolean(v.secretFile), {
    message: 'configure exactly one of secret, secretFile',
  });

export const ChatConfig = z
  .strictObject({
    /** Which approval modes are announced (default: analyst and two-person). */
    modes: z.array(z.enum(['analyst', 'two-person', 'external'])).default(['analyst', 'two-person']),
    /** The console's public URL, for "open in the console" links (the action's case page). */
    consoleUrl: z.url().optional(),
    slack: SlackChatConfig.optional(),
    webhook: WebhookChatConfig.optional(),
  })
  .refine((v) => v.slack || v.webhook, { message: 'configure slack, webhook or both' });
export type ChatConfig = z.infer<typeof ChatConfig>;

function readSecret(inline: string | undefined, file: string | undefined, what: string): string {
  if (inline) return inline;
  if (!file) throw new TourniquetError('CONFIG_INVALID', `${what} is not configured`);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    // the path is named, never the content
    throw new TourniquetError('CONFIG_INVALID', `cannot read ${what} from ${file}`, { cause: err });
  }
}

/** Relative `…File` paths are read against the configuration file's folder. */
export function resolveChatFiles(config: ChatConfig, baseDir: string): void {
  const s = config.slack;
  if (s?.botTokenFile) s.botTokenFile = resolve(baseDir, s.botTokenFile);
  if (s?.signingSecretFile) s.signingSecretFile = resolve(baseDir, s.signingSecretFile);
  if (config.webhook?.secretFile) config.webhook.secretFile = resolve(baseDir, config.webhook.secretFile);
}

export interface RunningChat {
  notifier: ChatNotifier;
  /** What the API needs for the Slack interaction endpoint and the refusal record. */
  api: NonNullable<ApiDeps['chat']>;
}

/**
 * Chat approvals beside the executor: the notifier (its own queue on the event store) and the
 * inputs of the API's interaction endpoint. Secrets are read here, once, and never logged.
 */
export async function startChat(opts: {
  config: ChatConfig;
  store: EventStore;
  dataDir: string;
  log?: Logger | undefined;
}): Promise<RunningChat> {
  const { config } = opts;
  const slack = config.slack
    ? {
        api: slackApi({
          token: readSecret(config.slack.botToken, config.slack.botTokenFile, 'chat.slack.botToken'),
          apiUrl: config.slack.apiUrl,
        }),
        signingSecret: readSecret(
          config.slack.signingSecret,
          config.slack.signingSecretFile,
          'chat.slack.signingSecret',
        ),
      }
    : undefined;
  const webhook = config.webhook
    ? {
        url: config.webhook.url,
        secret: readSecret(config.webhook.secret, config.webhook.secretFile, 'chat.webhook.secret'),
        timeoutMs: config.webhook.timeoutMs,
      }
    : undefined;
  const notifier = new ChatNotifier({
    store: opts.store,
    config: {
      modes: config.modes,
      consoleUrl: config.consoleUrl,
      slack: config.slack ? { channel: config.slack.channel } : undefined,
      webhook,
    },
    slack: slack?.api,
    dataDir: opts.dataDir,
    log: opts.log,
  });
  await notifier.start((err) => opts.log?.error({ err }, 'chat approvals stopped; restart the stack'));
  return {
    notifier,
    api: {
      refusals: new RefusalLog(refusalsPathOf(opts.dataDir)),
      ...(slack && config.slack
        ? { slack: { users: config.slack.users, signingSecret: slack.signingSecret, api: slack.api } }
        : {}),
    },
  };
}
