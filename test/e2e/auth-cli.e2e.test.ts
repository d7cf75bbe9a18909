import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT, type RunningStack, startStackProcess, stopGracefully } from '../support/cli.ts';

/**
 * `tourniquet auth` against a running `tourniquet start`: keys are added, used and revoked from
 * another process, and the running server applies each change without a restart.
 */

const run = promisify(execFile);

async function tq(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: REPO_ROOT });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('tourniquet auth CLI against a running server', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-auth-cli-'));
  let stack: RunningStack;

  beforeAll(async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    stack = await startStackProcess(['--data-dir', dataDir, '--port', String(port)]);
  });
  afterAll(async () => {
    if (stack) await stopGracefully(stack);
  });

  const status = async (headers: Record<string, string>) =>
    (await fetch(`${stack.url}/v1/cases`, { headers })).status;

  it('prints no long-lived token in the banner; the token file is private and works', async () => {
    const out = stack.output();
    expect(out).not.toContain(stack.adminToken);
    const file = /admin token file[^:]*: (\S+)/.exec(out)?.[1];
    expect(file).toBe(join(dataDir, 'admin.token'));
    expect(statSync(file!).mode & 0o077).toBe(0);
    expect(await status({ authorization: `Bearer ${stack.adminToken}` })).toBe(200);
  });

  it('prints a one-time console sign-in link that opens a session once', async () => {
    const link = /console sign-in link[^:]*: (\S+)/.exec(stack.output())?.[1];
    expect(link).toMatch(/\/login\/once\?token=[A-Za-z0-9_-]{40,}$/);
    const first = await fetch(link!, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const session = /tq_session=([^;]+)/.exec(first.headers.getSetCookie().join('\n'))?.[1];
    expect(session).toBeDefined();
    expect(await status({ cookie: `tq_session=${session}` })).toBe(200);
    const again = await fetch(link!, { redirect: 'manual' });
    expect(again.status).toBe(401);
  });

  it('adds a key (printed once, stored as a hash), which the running server accepts', async () => {
    const added = await tq(
      'auth',
      'add-key',
      '--id',
      'siem-forwarder',
      '--roles',
      'analyst,auditor',
      '--data-dir',
      dataDir,
    );
    expect(added.code, added.stderr).toBe(0);
    const key = added.stdout.split('\n')[0]!;
    expect(key).toMatch(/^tq_[A-Za-z0-9_-]{20,}$/);
    const stored = readFileSync(join(dataDir, 'auth.json'), 'utf8');
    expect(stored).not.toContain(key);
    expect(statSync(join(dataDir, 'auth.json')).mode & 0o077).toBe(0);

    await until('the new key to be accepted', async () =>
      (await status({ 'x-api-key': key })) === 200 ? true : undefined,
    );
    const listed = await tq('auth', 'list', '--data-dir', dataDir);
    expect(listed.stdout).toMatch(/key\tsiem-forwarder\tanalyst,auditor\tsha256:[0-9a-f]{12}/);
    expect(listed.stdout).not.toContain(key);

    const again = await tq(
      'auth',
      'add-key',
      '--id',
      'siem-forwarder',
      '--roles',
      'analyst',
      '--data-dir',
      dataDir,
    );
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('CONFLICT');
    const badRole = await tq(
      'auth',
      'add-key',
      '--id',
      'x',
      '--roles',
      'analyst,root',
      '--data-dir',
      dataDir,
    );
    expect(badRole.code).not.toBe(0);
    expect(badRole.stderr).toContain('unknown role root');

    // revoked from another process: the running server refuses the key without a restart
    const revoked = await tq('auth', 'revoke-key', '--id', 'siem-forwarder', '--data-dir', dataDir);
    expect(revoked.code, revoked.stderr).toBe(0);
    // polled for up to 5 s (no timed assertion; the watcher normally answers within milliseconds)
    await until('the revoked key to be refused', async () =>
      (await status({ 'x-api-key': key })) === 401 ? true : undefined,
    );
    expect(await status({ 'x-api-key': key })).toBe(401);
    // the stack is the same process throughout
    expect(stack.child.exitCode).toBeNull();
    const missing = await tq('auth', 'revoke-key', '--id', 'siem-forwarder', '--data-dir', dataDir);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('NOT_FOUND');
  });

  it('signs tokens with the server key, with the roles and lifetime asked for', async () => {
    const signed = await tq(
      'auth',
      'token',
      '--sub',
      'bob',
      '--roles',
      'auditor',
      '--ttl',
      '15m',
      '--data-dir',
      dataDir,
    );
    expect(signed.code, signed.stderr).toBe(0);
    const token = signed.stdout.trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({ sub: 'bob', roles: ['auditor'] });
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
    expect(await status({ authorization: `Bearer ${token}` })).toBe(200);
    // auditor may read but not decide
    const approve = await fetch(`${stack.url}/v1/actions/nope/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(approve.status).toBe(403);
    const badTtl = await tq(
      'auth',
      'token',
      '--sub',
      'bob',
      '--roles',
      'auditor',
      '--ttl',
      'forever',
      '--data-dir',
      dataDir,
    );
    expect(badTtl.code).not.toBe(0);
    expect(badTtl.stderr).toContain('--ttl');
  });
});
