/**
 * WebhookProvider against a real HTTP receiver (node:http on 127.0.0.1:0) that checks the signature and
 * timestamp, counts calls per Idempotency-Key and applies each action id once.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { ProviderError } from '../../../platform/errors.ts';
import type { ProviderAction } from './port.ts';
import { idempotencyKey, signBody, WebhookProvider } from './webhook.ts';

const SECRET = 'test-shared-secret-0123456789';

interface Account {
  enabled: boolean;
}

/** A receiver that speaks the webhook contract for a toy directory of accounts. */
class Receiver {
  server: Server;
  url = '';
  accounts = new Map<string, Account>();
  calls = new Map<string, number>();
  effects = 0;
  rejectedSignatures = 0;
  lastHeaders: IncomingMessage['headers'] = {};
  lastBody: Record<string, unknown> = {};
  /** Force a status for the next requests (e.g. 503), or hang to provoke a timeout. */
  forced: number | 'hang' | 'garbage' | 'badshape' | null = null;
  private applied = new Map<string, Record<string, unknown>>();

  constructor() {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/tourniquet`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.accounts = new Map([['svc-billing', { enabled: true }]]);
    this.calls.clear();
    this.applied.clear();
    this.effects = 0;
    this.rejectedSignatures = 0;
    this.forced = null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    this.lastHeaders = req.headers;

    const sig = String(req.headers['x-tourniquet-signature'] ?? '');
    const expected = 'sha256=' + createHmac('sha256', SECRET).update(raw).digest('hex');
    if (sig.length !== expected.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(expected))) {
      this.rejectedSignatures++;
      return send(401, { error: 'bad signature' });
    }
    const body = JSON.parse(raw) as Record<string, unknown>;
    this.lastBody = body;
    const ts = Number(req.headers['x-tourniquet-timestamp']);
    if (ts !== body.sentAt || Math.abs(Date.now() / 1000 - ts) > 300) return send(401, { error: 'stale' });

    const key = String(req.headers['idempotency-key'] ?? '');
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);

    if (this.forced === 'hang') return; // never answers
    if (this.forced === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('not json');
      return;
    }
    if (typeof this.forced === 'number') return send(this.forced, { error: 'forced' });
    if (this.forced === 'badshape') return send(200, { unexpected: true });

    const identity = body.identity as { id: string };
    const account = this.accounts.get(identity.id);
    if (!account) return send(404, { error: 'no such identity' });
    const prior = body.prior as { enabled?: boolean } | undefined;

    switch (body.phase) {
      case 'capture':
        return send(200, { enabled: account.enabled });
      case 'apply': {
        const done = this.applied.get(key);
        if (done) return send(200, done); // same action id: the first result, no second effect
        const result = { disabled: account.enabled, at: Date.now() };
        if (account.enabled) {
          account.enabled = false;
          this.effects++;
        }
        this.applied.set(key, result);
        return send(200, result);
      }
      case 'is_applied':
        return send(200, { applied: !account.enabled });
      case 'verify':
        return send(200, {
          probes: [{ probe: 'disabled', ok: !account.enabled, detail: `enabled=${account.enabled}` }],
        });
      case 'revert':
        account.enabled = prior?.enabled ?? account.enabled;
        return send(200, {
          restored: [`${identity.id} enabled=${account.enabled}`],
          residue: ['API keys issued before the action stay valid until expiry'],
        });
      default:
        return send(400, { error: 'unknown phase' });
    }
  }
}

const action = (id = 'act-1'): ProviderAction => ({
  actionId: id,
  action: 'disable_service_account',
  identity: { provider: 'billing-saas', id: 'svc-billing', type: 'service_account', tenant: 'acme' },
  args: { reason: 'secret exposed' },
});

describe('WebhookProvider (real HTTP receiver)', () => {
  const rx = new Receiver();
  let wh: WebhookProvider;

  beforeAll(async () => {
    await rx.start();
    wh = new WebhookProvider({ url: rx.url, secret: SECRET, name: 'billing-saas', timeoutMs: 1500 });
  });
  afterAll(async () => {
    await rx.stop();
  });
  beforeEach(() => rx.reset());

  test('full cycle: capture → apply → isApplied → verify → revert, signed and keyed per phase', async () => {
    const a = action();
    const prior = await wh.capture(a);
    expect(prior).toEqual({ enabled: true });
    expect(rx.lastHeaders['idempotency-key']).toBe('act-1:capture');
    expect(rx.lastBody).toMatchObject({
      actionId: 'act-1',
      phase: 'capture',
      args: { reason: 'secret exposed' },
    });
    expect(await wh.isApplied(a, prior)).toBe(false);

    const result = await wh.apply(a, prior);
    expect(result).toMatchObject({ disabled: true });
    expect(rx.lastHeaders['idempotency-key']).toBe('act-1');
    expect(rx.lastBody.prior).toEqual({ enabled: true });
    expect(await wh.isApplied(a, prior)).toBe(true);

    const probes = await wh.verify(a, prior, result);
    expect(probes).toEqual([{ probe: 'disabled', ok: true, detail: 'enabled=false' }]);
    expect(rx.lastBody.result).toEqual(result);
    expect(rx.lastHeaders['idempotency-key']).toBe('act-1:verify');

    const rb = await wh.revert(a, prior, result);
    expect(rb.restored).toEqual(['svc-billing enabled=true']);
    expect(rb.residue).toHaveLength(1);
    expect(rx.accounts.get('svc-billing')?.enabled).toBe(true);
    expect(rx.lastHeaders['idempotency-key']).toBe('act-1:revert');
    expect(rx.rejectedSignatures).toBe(0);
  });

  test('the signature is an HMAC-SHA256 of the exact body, with a timestamp header', async () => {
    await wh.capture(action());
    const ts = Number(rx.lastHeaders['x-tourniquet-timestamp']);
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(5);
    expect(rx.lastBody.sentAt).toBe(ts);
    expect(String(rx.lastHeaders['x-tourniquet-signature'])).toBe(
      signBody(SECRET, JSON.stringify(rx.lastBody)),
    );
    expect(idempotencyKey('x', 'apply')).toBe('x');
    expect(idempotencyKey('x', 'verify')).toBe('x:verify');
  });

  test('apply twice with one action id: two calls on one key, one effect, same result', async () => {
    const a = action('act-twice');
    const prior = await wh.capture(a);
    const r1 = await wh.apply(a, prior);
    const r2 = await wh.apply(a, prior);
    expect(r2).toEqual(r1);
    expect(rx.calls.get('act-twice')).toBe(2);
    expect(rx.effects).toBe(1);
  });

  test('a wrong secret is refused by the receiver: permanent error', async () => {
    const bad = new WebhookProvider({ url: rx.url, secret: 'another-secret-0123456789' });
    const e = await bad.capture(action()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ProviderError);
    expect((e as ProviderError).retriable).toBe(false);
    expect(rx.rejectedSignatures).toBe(1);
  });

  test.each([
    [503, true],
    [500, true],
    [429, true],
    [409, true],
    [404, false],
    [403, false],
    [400, false],
  ])('receiver status %i → retriable=%s', async (status, retriable) => {
    rx.forced = status;
    const e = await wh.capture(action()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ProviderError);
    expect((e as ProviderError).retriable).toBe(retriable);
    expect((e as ProviderError).details).toMatchObject({ status, phase: 'capture' });
  });

  test('unknown identity (404 from the receiver) is permanent', async () => {
    const a = { ...action(), identity: { ...action().identity, id: 'nobody' } };
    const e = await wh.capture(a).catch((x: unknown) => x);
    expect((e as ProviderError).retriable).toBe(false);
  });

  test('a receiver that hangs times out: retriable', async () => {
    rx.forced = 'hang';
    const started = Date.now();
    const e = await wh.capture(action()).catch((x: unknown) => x);
    expect((e as ProviderError).retriable).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('nobody listening: retriable', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const gone = new WebhookProvider({ url: `http://127.0.0.1:${port}/x`, secret: SECRET, timeoutMs: 1000 });
    const e = await gone.capture(action()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ProviderError);
    expect((e as ProviderError).retriable).toBe(true);
  });

  test('a reply that breaks the contract is permanent', async () => {
    rx.forced = 'garbage';
    const e = await wh.capture(action()).catch((x: unknown) => x);
    expect((e as ProviderError).retriable).toBe(false);
    expect((e as ProviderError).message).toContain('not JSON');
    rx.forced = 'badshape'; // an object, but no probes / no restored+residue / no applied flag
    for (const call of [
      () => wh.verify(action(), {}, {}),
      () => wh.revert(action(), {}, {}),
      () => wh.isApplied(action(), {}),
    ]) {
      const err = await call().catch((x: unknown) => x);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).retriable).toBe(false);
      expect((err as ProviderError).message).toContain('breaks the contract');
    }
  });

  test('supports() follows the configured actions; unsupported actions are refused without a call', async () => {
    const narrow = new WebhookProvider({ url: rx.url, secret: SECRET, actions: ['revoke_sessions'] });
    expect(narrow.supports('revoke_sessions')).toBe(true);
    expect(narrow.supports('disable_service_account')).toBe(false);
    const e = await narrow.capture(action()).catch((x: unknown) => x);
    expect((e as ProviderError).retriable).toBe(false);
    expect(rx.calls.size).toBe(0);
  });

  test('configuration is checked: short secret, non-http URL', () => {
    expect(() => new WebhookProvider({ url: rx.url, secret: 'short' })).toThrow(ProviderError);
    expect(() => new WebhookProvider({ url: 'file:///etc/passwd', secret: SECRET })).toThrow(ProviderError);
  });
});
