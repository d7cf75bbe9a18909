/**
 * The test servers' start/stop scripts keep ownership exact: one owner per server per run, a `down`
 * that names another owner leaves the server alone, a lost pid file never makes a live server look
 * absent, another run cannot claim a server on the same ports, and the run directory is never removed
 * while a process uses it. Every server here is this test's own (own TOURNIQUET_RUN, free ports): the
 * shared servers in /tmp/tourniquet-infra are never touched.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/kafka.ts';
import {
  keycloakUnavailableReason,
  type PrivateKeycloak,
  startPrivateKeycloak,
} from '../support/keycloak.ts';

const exec = promisify(execFile);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function script(
  name: string,
  cmd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec('bash', [join(ROOT, 'scripts', `${name}.sh`), cmd], {
      env,
      timeout: 300_000,
      maxBuffer: 10 * 1024 * 1024,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pidIn = (file: string) => Number(readFileSync(file, 'utf8').trim());

interface Server {
  name: 'kafka' | 'registry';
  ports: string[];
  runSub: string;
}
const SERVERS: Server[] = [
  { name: 'kafka', ports: ['KAFKA_PORT', 'KAFKA_CONTROLLER_PORT'], runSub: 'kafka' },
  { name: 'registry', ports: ['REGISTRY_PORT', 'REGISTRY_MANAGEMENT_PORT'], runSub: 'registry' },
];

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
}, 300_000);

describe.each(SERVERS)('scripts/$name.sh ownership (own run dir and ports)', (s) => {
  it('one owner per run; another owner, another run and a lost pid file cannot take it or its directory', async () => {
    const run = mkdtempSync(join(tmpdir(), `tq-own-${s.name}-`));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TOURNIQUET_RUN: run,
      KAFKA_HEAP: '256m',
      REGISTRY_HEAP: '256m',
    };
    for (const p of s.ports) env[p] = String(await freePort());
    cleanups.push(async () => {
      await script(s.name, 'down', env);
      if (!existsSync(join(run, `${s.name}.pid`))) rmSync(run, { recursive: true, force: true });
    });
    const pidFile = join(run, `${s.name}.pid`);
    const runDir = join(run, s.runSub);

    const up = await script(s.name, 'up', { ...env, TQ_OWNER: 'owner-a' });
    expect(up.code, up.out).toBe(0);
    const pid = pidIn(pidFile);
    expect(readFileSync(join(run, `${s.name}.owner`), 'utf8').trim()).toBe('owner-a');

    // a second `up` reuses it and does not become its owner
    const again = await script(s.name, 'up', { ...env, TQ_OWNER: 'owner-b' });
    expect(again.code, again.out).toBe(0);
    expect(pidIn(pidFile)).toBe(pid);
    expect(readFileSync(join(run, `${s.name}.owner`), 'utf8').trim()).toBe('owner-a');

    // a `down` by another owner leaves the server and its directory alone
    const foreign = await script(s.name, 'down', { ...env, TQ_OWNER: 'owner-b' });
    expect(foreign.code, foreign.out).toBe(0);
    expect(foreign.out).toContain('leaving it running');
    expect(alive(pid)).toBe(true);
    expect(existsSync(runDir)).toBe(true);

    // another run on the same ports cannot start a second server nor claim this one
    const other = mkdtempSync(join(tmpdir(), `tq-own-${s.name}-other-`));
    const intruder = await script(s.name, 'up', { ...env, TOURNIQUET_RUN: other, TQ_OWNER: 'owner-c' });
    expect(intruder.code, intruder.out).not.toBe(0);
    expect(intruder.out).toMatch(/port .* taken/);
    expect(alive(pid)).toBe(true);
    rmSync(other, { recursive: true, force: true });

    // a lost pid file: the live server is still found (and recorded again), never deleted under it
    unlinkSync(pidFile);
    const status = await script(s.name, 'status', env);
    expect(status.code, status.out).toBe(0);
    expect(pidIn(pidFile)).toBe(pid);

    // its owner stops it; only then does its data go
    const down = await script(s.name, 'down', { ...env, TQ_OWNER: 'owner-a' });
    expect(down.code, down.out).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(pidFile)).toBe(false);
  }, 300_000);
});

const kcUnavailable = keycloakUnavailableReason();
describe.skipIf(kcUnavailable !== null)('scripts/keycloak.sh ownership (own run dir and ports)', () => {
  it('the owner stops it; another owner, another run or a lost pid file never pull its directory', async () => {
    const kc: PrivateKeycloak = await startPrivateKeycloak();
    cleanups.push(() => kc.down());
    const env = kc.env!;
    const runDir = join(kc.runDir, 'keycloak');
    const pid = pidIn(kc.pidFile);
    expect(kc.startedHere).toBe(true);

    const again = await script('keycloak', 'up', { ...env, TQ_OWNER: 'someone-else' });
    expect(again.code, again.out).toBe(0);
    expect(readFileSync(join(kc.runDir, 'keycloak.owner'), 'utf8').trim()).toBe(kc.owner);

    const foreign = await script('keycloak', 'down', { ...env, TQ_OWNER: 'someone-else' });
    expect(foreign.out).toContain('leaving it running');
    expect(alive(pid)).toBe(true);
    expect(existsSync(runDir)).toBe(true);

    // another run directory on the same ports: refused, and it does not think the server is its own
    const other = mkdtempSync(join(tmpdir(), 'tq-own-keycloak-other-'));
    const intruder = await script('keycloak', 'up', { ...env, TOURNIQUET_RUN: other, TQ_OWNER: 'intruder' });
    expect(intruder.code).not.toBe(0);
    expect(intruder.out).toContain("not this run's Keycloak");
    const intruderDown = await script('keycloak', 'down', { ...env, TOURNIQUET_RUN: other });
    expect(intruderDown.code, intruderDown.out).toBe(0);
    expect(alive(pid)).toBe(true);
    expect(existsSync(runDir)).toBe(true);
    rmSync(other, { recursive: true, force: true });

    // the pid file lost: found again by its run directory
    unlinkSync(kc.pidFile);
    const status = await script('keycloak', 'status', env);
    expect(status.code, status.out).toBe(0);
    expect(pidIn(kc.pidFile)).toBe(pid);

    const down = await script('keycloak', 'down', env);
    expect(down.code, down.out).toBe(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(runDir)).toBe(false);
  }, 900_000);
});
