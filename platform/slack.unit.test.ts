import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slackApi } from './slack.ts';

/** The adapter's errors: typed, retriable only when a retry can help, and never carrying the token. */
describe('Slack adapter errors', () => {
  const token = 'xoxb-secret-token-never-logged';
  let base: string;
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url?.includes('chat.update')) {
      res.statusCode = 503;
      res.end('{}');
    } else res.end(JSON.stringify({ ok: false, error: 'channel_not_found' }));
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const caught = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err as Error & { code: string; retriable: boolean };
    }
    throw new Error('expected a failure');
  };

  it('a platform error is permanent; a 5xx and an unreachable Slack are retriable; none holds the token', async () => {
    const api = slackApi({ token, apiUrl: base });
    const permanent = await caught(api.postMessage({ channel: 'C1', text: 't', blocks: [] }));
    expect(permanent).toMatchObject({ code: 'PROVIDER_PERMANENT', retriable: false });
    expect(permanent.message).toContain('channel_not_found');
    const busy = await caught(api.update({ channel: 'C1', ts: '1', text: 't', blocks: [] }));
    expect(busy).toMatchObject({ code: 'PROVIDER_RETRIABLE', retriable: true });
    const down = await caught(
      slackApi({ token, apiUrl: 'http://127.0.0.1:9/api/' }).postEphemeral({
        channel: 'C1',
        user: 'U1',
        text: 't',
      }),
    );
    expect(down).toMatchObject({ code: 'PROVIDER_RETRIABLE', retriable: true });
    for (const e of [permanent, busy, down]) {
      expect(e.cause).toBeUndefined();
      expect(JSON.stringify({ ...e, message: e.message })).not.toContain(token);
    }
  });
});
