import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { TourniquetError } from '../platform/errors.ts';
import { Role } from '../services/api/auth.ts';

/**
 * Chat approvals (providers file, `chat:` block; docs/configuration.md). Every secret has an inline
 * form (use `${ENV}` interpolation) and a `…File` form; secrets are never logged.
 */
const SlackUser = z.strictObject({
  /** The Tourniquet principal this Slack user acts as (recorded as the approver). */
  principal: z.string().min(1),
  roles: z.array(Role).min(1),
});

export const SlackChatConfig = z
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
export type SlackChatConfig = z.infer<typeof SlackChatConfig>;

export const WebhookChatConfig = z
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
export type WebhookChatConfig = z.infer<typeof WebhookChatConfig>;

export const ChatConfig = z
  .strictObject({
    /** Which approval modes are announced (default: analyst and two-person). */
    modes: z.array(z.enum(['analyst', 'two-person', 'external'])).default(['analyst', 'two-person']),
    /** The console's public URL, for "open in the console" links. */
    consoleUrl: z.url().optional(),
    slack: SlackChatConfig.optional(),
    webhook: WebhookChatConfig.optional(),
  })
  .refine((v) => v.slack || v.webhook, { message: 'configure slack, webhook or both' });
export type ChatConfig = z.infer<typeof ChatConfig>;

export function readSecret(inline: string | undefined, file: string | undefined, what: string): string {
  if (inline) return inline;
  if (!file) throw new TourniquetError('CONFIG_INVALID', `${what} is not configured`);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    // the path is named, never the content
    throw new TourniquetError('CONFIG_INVALID', `cannot read ${what} from ${file}`, { cause: err });
  }
}
