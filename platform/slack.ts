import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';
import { TourniquetError } from './errors.ts';

/** The three Slack Web API calls chat approvals make. */
export interface SlackApi {
  postMessage(args: {
    channel: string;
    text: string;
    blocks: unknown[];
  }): Promise<{ channel: string; ts: string }>;
  update(args: { channel: string; ts: string; text: string; blocks: unknown[] }): Promise<void>;
  postEphemeral(args: { channel: string; user: string; text: string }): Promise<void>;
}

/** A Slack error a retry can fix (network, 5xx, rate limit), as a typed error. */
function slackError(err: unknown, method: string): TourniquetError {
  const e = err as { code?: string; statusCode?: number; data?: { error?: string } };
  const retriable =
    e.code === ErrorCode.RequestError ||
    e.code === ErrorCode.RateLimitedError ||
    (e.code === ErrorCode.HTTPError && (e.statusCode ?? 500) >= 500);
  const why = e.data?.error ?? (e.statusCode ? `HTTP ${e.statusCode}` : (err as Error).message);
  return new TourniquetError(
    retriable ? 'PROVIDER_RETRIABLE' : 'PROVIDER_PERMANENT',
    `Slack ${method} failed: ${why}`,
    {
      retriable,
      status: 502,
      // no `cause`: the client's error carries the request, bot token included, and must never reach a log
    },
  );
}

/**
 * The Slack Web API adapter (@slack/web-api) for chat approvals, with the client's own retries off:
 * the notifier retries in event order.
 */
export function slackApi(config: { token: string; apiUrl?: string | undefined }): SlackApi {
  const token = config.token;
  const client = new WebClient(token, {
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
    timeout: 10_000,
  });
  const call = async <T>(method: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw slackError(err, method);
    }
  };
  return {
    postMessage: (args) =>
      call('chat.postMessage', async () => {
        const res = await client.chat.postMessage({
          channel: args.channel,
          text: args.text,
          blocks: args.blocks as never,
        });
        return { channel: String(res.channel), ts: String(res.ts) };
      }),
    update: (args) =>
      call('chat.update', async () => {
        await client.chat.update({
          channel: args.channel,
          ts: args.ts,
          text: args.text,
          blocks: args.blocks as never,
        });
      }),
    postEphemeral: (args) =>
      call('chat.postEphemeral', async () => {
        await client.chat.postEphemeral({ channel: args.channel, user: args.user, text: args.text });
      }),
  };
}
