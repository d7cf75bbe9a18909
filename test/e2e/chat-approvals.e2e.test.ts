import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type EmbeddedStack, startEmbedded } from '../../app/embedded.ts';
import { issueToken, type Role } from '../../services/api/auth.ts';
import { REPO_ROOT } from '../support/cli.ts';
import {
  blockActionsPayload,
  type FakeSlack,
  type SlackCall,
  sendInteraction,
  startFakeSlack,
  startWebhookReceiver,
} from '../support/fake-slack.ts';

/**
 * Chat approvals end to end in the embedded stack: approval requests reach a local server that
 * receives them as Slack would (and a signed webhook), signed interaction payloads come back, and
 * the same approval rules as the API apply — across Slack and the API.
 */

const SIGNING_SECRET = 'slack-signing-secret-for-tests-0123';
const WEBHOOK_SECRET = 'webhook-secret-for-tests-0123456789';
const CHANNEL = 'C0APPROVALS';

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The Approve button's value in a posted message (action id | argument digest). */
function buttonValue(call: SlackCall): string | undefined {
  const blocks = call.args.blocks as Array<{
    type: string;
    elements?: Array<{ action_id?: string; value?: string }>;
  }>;
  return blocks.find((b) => b.type === 'actions')?.elements?.find((e) => e.action_id === 'tq_approve')?.value;
}

const text = (call: SlackCall) => JSON.stringify(call.args.blocks);

describe('chat approvals: Slack and a signed webhook', () => {
  let dir: string;
  let stack: EmbeddedStack;
  let slack: FakeSlack;
  let hook: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let interactions: string;
  const tokens = new Map<string, string>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tq-chat-'));
    slack = await startFakeSlack();
    hook = await startWebhookReceiver();
    writeFileSync(join(dir, 'slack-signing-secret'), `${SIGNING_SECRET}\n`);
    writeFileSync(
      join(dir, 'providers.yaml'),
      stringify({
        providers: { '*': { type: 'dry-run' } },
        chat: {
          consoleUrl: 'http://127.0.0.1:7420',
          slack: {
            botToken: 'xoxb-test-token',
            signingSecretFile: 'slack-signing-secret',
            channel: CHANNEL,
            apiUrl: slack.apiUrl,
            users: {
              U0ANN: { principal: 'ann', roles: ['analyst'] },
              U0BEN: { principal: 'ben', roles: ['analyst'] },
              U0AUD: { principal: 'aud', roles: ['auditor'] },
            },
          },
          webhook: { url: hook.url, secret: WEBHOOK_SECRET },
        },
      }),
    );
    stack = await startEmbedded({
      dataDir: join(dir, 'data'),
      port: 0,
      providersPath: join(dir, 'providers.yaml'),
      tickMs: 1000,
      durability: 'normal',
      log: pino({ level: 'silent' }),
    });
    interactions = `${stack.url}/v1/chat/slack/interactions`;
    for (const [sub, roles] of [
      ['ann', ['analyst']],
      ['ben', ['analyst']],
      ['aud', ['auditor']],
      ['svc', ['service']],
    ] as const)
      tokens.set(sub, await issueToken(stack.auth, { sub, roles: [...roles] as Role[] }));
  });

  afterAll(async () => {
    await stack?.close();
    await slack?.close();
    await hook?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const api = async (method: string, path: string, who: string, body?: unknown) => {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens.get(who)}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: the test reads API answers as loose JSON
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  async function detect(id: string, identity: Record<string, string>, kind: string, confidence: number) {
    const r = await api('POST', '/v1/detections', 'svc', {
      id,
      source: 'okta',
      kind,
      confidence,
      severity: 'high',
      title: `${kind} for ${identity.id}`,
      identity,
      occurredAt: new Date().toISOString(),
    });
    expect(r.status).toBe(202);
  }

  /** Waits for the approval request message about this identity; returns it and its button value. */
  async function requestFor(
    identityId: string,
  ): Promise<{ call: SlackCall; value: string; actionId: string }> {
    const call = await until(`a Slack approval request for ${identityId}`, () =>
      slack.calls.find((c) => c.method === 'chat.postMessage' && text(c).includes(identityId)),
    );
    const value = buttonValue(call)!;
    return { call, value, actionId: value.split('|')[0]! };
  }

  const press = (
    user: string,
    value: string,
    opts: { secret?: string; timestamp?: number; reject?: boolean } = {},
  ) =>
    sendInteraction(
      interactions,
      blockActionsPayload({
        user,
        channel: CHANNEL,
        messageTs: '1700000001.000100',
        actionId: opts.reject ? 'tq_reject' : 'tq_approve',
        value,
      }),
      { secret: opts.secret ?? SIGNING_SECRET, ...(opts.timestamp ? { timestamp: opts.timestamp } : {}) },
    );

  it('posts the approval facts with buttons to Slack and the signed webhook; a signed interaction approves', async () => {
    await detect(
      'chat-1',
      { provider: 'okta', id: 'carol@acme.example', type: 'human' },
      'impossible_travel',
      0.7,
    );
    const { call, value, actionId } = await requestFor('carol@acme.example');
    expect(call.token).toBe('xoxb-test-token');
    expect(call.args.channel).toBe(CHANNEL);
    // the facts the queue shows
    for (const fact of [
      'okta:carol@acme.example',
      'analyst-review',
      'revoke_sessions',
      'Confidence',
      '0.70',
      'Blast radius',
      'Reversible',
      'Expires',
      'impossible_travel',
    ])
      expect(text(call)).toContain(fact);
    const action = (await api('GET', `/v1/actions/${actionId}`, 'ann')).body;
    expect(action.status).toBe('proposed');
    expect(value).toBe(`${actionId}|${action.argsDigest}`);

    // the webhook got the same facts, signed over timestamp + body
    const requested = await until('the webhook request', () =>
      hook.received.find((r) => r.headers['x-tourniquet-event'] === 'approval.requested'),
    );
    const ts = String(requested.headers['x-tourniquet-timestamp']);
    expect(requested.headers['x-tourniquet-signature']).toBe(
      `v1=${createHmac('sha256', WEBHOOK_SECRET).update(`${ts}.${requested.body}`).digest('hex')}`,
    );
    const payload = JSON.parse(requested.body);
    expect(payload.approval).toMatchObject({
      actionId,
      identity: { provider: 'okta', id: 'carol@acme.example' },
      ruleId: 'analyst-review',
      confidence: 0.7,
      argsDigest: action.argsDigest,
    });
    expect(payload.actions.map((a: { id: string }) => a.id)).toEqual(['approve', 'reject']);

    const approved = await press('U0ANN', value);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const after = (await api('GET', `/v1/actions/${actionId}`, 'ann')).body;
    expect(after.approvers).toEqual(['ann']);
    expect(['approved', 'executed']).toContain(after.status);
    expect(after.approvals[0]).toMatchObject({ by: { kind: 'human', id: 'ann', role: 'analyst' } });

    // the message is updated with the outcome, without buttons
    const update = await until('the Slack message update', () =>
      slack.calls.find((c) => c.method === 'chat.update' && text(c).includes('Approved by ann')),
    );
    expect(update.args.ts).toBe('1700000001.000100');
    expect(buttonValue(update)).toBeUndefined();
  });

  it('refuses and records a wrong signature, an old timestamp, an unmapped user and a user without a deciding role', async () => {
    await detect(
      'chat-2',
      { provider: 'okta', id: 'dave@acme.example', type: 'human' },
      'impossible_travel',
      0.7,
    );
    const { value, actionId } = await requestFor('dave@acme.example');

    const forged = await press('U0ANN', value, { secret: 'not-the-signing-secret' });
    expect(forged.status).toBe(401);
    expect(forged.body.error).toMatchObject({ reason: 'bad_signature' });
    const old = await press('U0ANN', value, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    expect(old.status).toBe(401);
    expect(old.body.error).toMatchObject({ reason: 'stale_timestamp' });
    const stranger = await press('U0EVE', value);
    expect(stranger.status).toBe(403);
    expect(stranger.body.error).toMatchObject({ reason: 'unmapped_user' });
    const auditor = await press('U0AUD', value);
    expect(auditor.status).toBe(403);

    // nothing was decided
    const a = (await api('GET', `/v1/actions/${actionId}`, 'ann')).body;
    expect(a.status).toBe('proposed');
    expect(a.approvers).toEqual([]);

    // the auditor sees every refusal; the unmapped user was told why
    const refusals = await api('GET', '/v1/chat/refusals', 'aud');
    expect(refusals.status).toBe(200);
    const mine = refusals.body.refusals.filter(
      (r: { actionId?: string; reason: string }) => !r.actionId || r.actionId === actionId,
    );
    expect(mine.map((r: { reason: string }) => r.reason)).toEqual([
      'bad_signature',
      'stale_timestamp',
      'unmapped_user',
      'refused_by_rules',
    ]);
    expect(mine[2]).toMatchObject({ slackUser: 'U0EVE', decision: 'approve' });
    expect(mine[3]).toMatchObject({ slackUser: 'U0AUD', principal: 'aud', code: 'FORBIDDEN' });
    // a forged request names no user the record could trust
    expect(mine[0].slackUser).toBeUndefined();
    expect(
      slack.calls.some(
        (c) =>
          c.method === 'chat.postEphemeral' &&
          c.args.user === 'U0EVE' &&
          String(c.args.text).includes('not set up'),
      ),
    ).toBe(true);
    expect((await api('GET', '/v1/chat/refusals', 'ann')).status).toBe(403);
  });

  it('holds the two-person rule across Slack and the API', async () => {
    await detect(
      'chat-3',
      { provider: 'aws', id: 'ci-deployer', type: 'service_account' },
      'privilege_escalation',
      0.95,
    );
    const { value, actionId, call } = await requestFor('ci-deployer');
    expect(text(call)).toContain('two-person');

    const first = await press('U0ANN', value);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    let a = (await api('GET', `/v1/actions/${actionId}`, 'ben')).body;
    expect(a.status).toBe('proposed');
    expect(a.approvers).toEqual(['ann']);
    const half = await until('the half-approved update', () =>
      slack.calls.find((c) => c.method === 'chat.update' && text(c).includes('second, different person')),
    );
    expect(buttonValue(half)).toBe(value); // the buttons stay for the second approver

    // the same person again: in Slack, and through the API
    const again = await press('U0ANN', value);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'APPROVAL_INVALID' });
    const viaApi = await api('POST', `/v1/actions/${actionId}/approve`, 'ann', {});
    expect(viaApi.status).toBe(409);

    // a second, different person through the API completes it
    const second = await api('POST', `/v1/actions/${actionId}/approve`, 'ben', { argsDigest: a.argsDigest });
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    a = second.body.action;
    expect(a.approvers).toEqual(['ann', 'ben']);
    expect(['approved', 'executed']).toContain(a.status);
    await until('the final update', () =>
      slack.calls.find((c) => c.method === 'chat.update' && text(c).includes('Approved by ann, ben')),
    );
    const refusals = (await api('GET', '/v1/chat/refusals', 'aud')).body.refusals;
    expect(refusals.at(-1)).toMatchObject({ reason: 'refused_by_rules', principal: 'ann', actionId });
  });

  it('rejects from Slack and says so in the message', async () => {
    await detect(
      'chat-4',
      { provider: 'okta', id: 'erin@acme.example', type: 'human' },
      'impossible_travel',
      0.7,
    );
    const { value, actionId } = await requestFor('erin@acme.example');
    const rejected = await press('U0BEN', value, { reject: true });
    expect(rejected.status).toBe(200);
    const a = (await api('GET', `/v1/actions/${actionId}`, 'ann')).body;
    expect(a.status).toBe('rejected');
    expect(a.rejection).toMatchObject({ by: { id: 'ben' } });
    await until('the rejection update', () =>
      slack.calls.find((c) => c.method === 'chat.update' && text(c).includes('Rejected by ben')),
    );
  });
});

describe('chat approvals: an approval that expires', () => {
  it('updates the Slack message with the expiry and removes the buttons', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-chat-expiry-'));
    const slack = await startFakeSlack();
    let stack: EmbeddedStack | undefined;
    try {
      // the default policy with approvals that expire after 2 seconds
      const policy = readFileSync(join(REPO_ROOT, 'policies/default.yaml'), 'utf8').replace(
        /approvalTtl: \S+/,
        'approvalTtl: 2s',
      );
      writeFileSync(join(dir, 'policy.yaml'), policy);
      writeFileSync(
        join(dir, 'providers.yaml'),
        stringify({
          providers: { '*': { type: 'dry-run' } },
          chat: {
            slack: {
              botToken: 'xoxb-test-token',
              signingSecret: SIGNING_SECRET,
              channel: CHANNEL,
              apiUrl: slack.apiUrl,
              users: { U0ANN: { principal: 'ann', roles: ['analyst'] } },
            },
          },
        }),
      );
      stack = await startEmbedded({
        dataDir: join(dir, 'data'),
        port: 0,
        policyPath: join(dir, 'policy.yaml'),
        providersPath: join(dir, 'providers.yaml'),
        tickMs: 250,
        durability: 'normal',
        log: pino({ level: 'silent' }),
      });
      const svc = await issueToken(stack.auth, { sub: 'svc', roles: ['service'] });
      const res = await fetch(`${stack.url}/v1/detections`, {
        method: 'POST',
        headers: { authorization: `Bearer ${svc}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          id: 'chat-expiry-1',
          source: 'okta',
          kind: 'impossible_travel',
          confidence: 0.7,
          severity: 'high',
          identity: { provider: 'okta', id: 'frank@acme.example', type: 'human' },
          occurredAt: new Date().toISOString(),
        }),
      });
      expect(res.status).toBe(202);
      const posted = await until('the approval request', () =>
        slack.calls.find((c) => c.method === 'chat.postMessage' && text(c).includes('frank@acme.example')),
      );
      expect(buttonValue(posted)).toBeDefined();
      const expired = await until('the expiry update', () =>
        slack.calls.find((c) => c.method === 'chat.update' && text(c).includes('Expired at')),
      );
      expect(buttonValue(expired)).toBeUndefined();
      // a press on the stale message is refused by the rules (no longer pending) and recorded
      const late = await sendInteraction(
        `${stack.url}/v1/chat/slack/interactions`,
        blockActionsPayload({
          user: 'U0ANN',
          channel: CHANNEL,
          messageTs: String(posted.args.ts ?? '1'),
          actionId: 'tq_approve',
          value: buttonValue(posted)!,
        }),
        { secret: SIGNING_SECRET },
      );
      expect(late.status).toBe(409);
    } finally {
      await stack?.close();
      await slack.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
