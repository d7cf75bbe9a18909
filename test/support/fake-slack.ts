/**
 * Test support: a local HTTP server that receives Slack Web API calls as Slack would
 * (chat.postMessage, chat.update, chat.postEphemeral; form-encoded or JSON, bearer token), records
 * them and answers like Slack; and helpers that send signed interaction payloads (block_actions) the
 * way Slack does, to Tourniquet's interaction endpoint.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  method: string;
  token: string | undefined;
  args: Record<string, unknown>;
}

export interface FakeSlack {
  /** The base URL to configure as chat.slack.apiUrl (ends with /api/). */
  apiUrl: string;
  calls: SlackCall[];
  close(): Promise<void>;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseArgs(contentType: string | undefined, text: string): Record<string, unknown> {
  if (contentType?.includes('application/json')) return JSON.parse(text) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    // the client sends arrays and objects (blocks) as JSON strings
    out[k] = /^[[{]/.test(v) ? JSON.parse(v) : v;
  }
  return out;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  let ts = 1_700_000_000;
  const server: Server = createServer(async (req, res) => {
    const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
    const args = parseArgs(req.headers['content-type'], await bodyOf(req));
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : (args.token as string | undefined);
    calls.push({ method, token, args });
    res.setHeader('content-type', 'application/json');
    const channel = String(args.channel ?? '');
    if (method === 'chat.postMessage') {
      ts += 1;
      res.end(JSON.stringify({ ok: true, channel, ts: `${ts}.000100`, message: { text: args.text } }));
    } else if (method === 'chat.update') {
      res.end(JSON.stringify({ ok: true, channel, ts: args.ts }));
    } else if (method === 'chat.postEphemeral') {
      res.end(JSON.stringify({ ok: true, message_ts: `${ts}.000200` }));
    } else {
      res.end(JSON.stringify({ ok: false, error: 'unknown_method' }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    calls,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A block_actions payload as Slack sends it when a user presses one of the message's buttons. */
export function blockActionsPayload(opts: {
  user: string;
  channel: string;
  messageTs: string;
  actionId: 'tq_approve' | 'tq_reject';
  value: string;
}): Record<string, unknown> {
  return {
    type: 'block_actions',
    user: { id: opts.user, username: opts.user.toLowerCase(), team_id: 'T0TEST' },
    api_app_id: 'A0TEST',
    team: { id: 'T0TEST', domain: 'soc' },
    container: { type: 'message', message_ts: opts.messageTs, channel_id: opts.channel },
    channel: { id: opts.channel, name: 'soc-approvals' },
    message: { ts: opts.messageTs },
    response_url: 'https://hooks.slack.invalid/actions/T0TEST/1/x',
    trigger_id: '1.2.3',
    actions: [
      {
        type: 'button',
        action_id: opts.actionId,
        block_id: 'tq_decision',
        value: opts.value,
        action_ts: String(Date.now() / 1000),
      },
    ],
  };
}

/** Posts an interaction, signed with `secret` (v0) at `timestamp` (default now), form-encoded. */
export async function sendInteraction(
  url: string,
  payload: Record<string, unknown>,
  opts: { secret: string; timestamp?: number },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const signature = `v0=${createHmac('sha256', opts.secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': signature,
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A receiver for the generic signed webhook: records each request with its headers and raw body. */
export async function startWebhookReceiver(): Promise<{
  url: string;
  received: Array<{ headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}> {
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const server = createServer(async (req, res) => {
    received.push({ headers: req.headers, body: await bodyOf(req) });
    res.statusCode = 204;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/tourniquet`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
