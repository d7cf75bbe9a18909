/**
 * The event store contract (test/contract/eventstore.contract.ts, unchanged) against a real KurrentDB
 * started by @testcontainers/kurrentdb. Needs a reachable Docker engine; without one the suite is
 * reported as skipped, by name and with the reason — never silently.
 *
 *   npx vitest run platform/eventstore/kurrentdb.int.test.ts
 *
 * KURRENTDB_IMAGE overrides the server image (default below). KURRENTDB_CONNECTION_STRING runs the
 * suite against an already running server instead (no Docker needed; use a disposable database).
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { eventStoreContract } from '../../test/contract/eventstore.contract.ts';
import { KurrentDbEventStore } from './kurrentdb.ts';

const IMAGE = process.env.KURRENTDB_IMAGE ?? 'kurrentplatform/kurrentdb:25.0';
const PING_TIMEOUT_MS = 1500;

type Engine = { ok: true; where: string } | { ok: false; reason: string };

function ping(
  target: { socketPath: string } | { host: string; port: number },
  where: string,
): Promise<Engine> {
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: PING_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(
        res.statusCode === 200
          ? { ok: true, where }
          : { ok: false, reason: `${where} answered /_ping with HTTP ${res.statusCode}` },
      );
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ ok: false, reason: `${where}: ${err.code ?? err.message}` }),
    );
    req.end();
  });
}

/** Cheap Docker detection: DOCKER_HOST, else the usual sockets, each pinged with a short timeout. */
async function dockerEngine(): Promise<Engine> {
  const host = process.env.DOCKER_HOST;
  if (host) {
    if (host.startsWith('unix://'))
      return ping({ socketPath: host.slice('unix://'.length) }, `DOCKER_HOST=${host}`);
    if (host.startsWith('tcp://') && !process.env.DOCKER_TLS_VERIFY) {
      const u = new URL(host.replace(/^tcp:/, 'http:'));
      return ping({ host: u.hostname, port: Number(u.port || 2375) }, `DOCKER_HOST=${host}`);
    }
    return { ok: true, where: `DOCKER_HOST=${host} (TLS or named pipe: left to testcontainers)` };
  }
  const sockets = [
    '/var/run/docker.sock',
    ...(process.env.XDG_RUNTIME_DIR ? [join(process.env.XDG_RUNTIME_DIR, 'docker.sock')] : []),
    join(homedir(), '.docker/run/docker.sock'),
    join(homedir(), '.docker/desktop/docker.sock'),
  ];
  const present = sockets.filter((s) => existsSync(s));
  if (present.length === 0)
    return { ok: false, reason: `DOCKER_HOST is unset and no socket at ${sockets.join(', ')}` };
  const reasons: string[] = [];
  for (const s of present) {
    const r = await ping({ socketPath: s }, s);
    if (r.ok) return r;
    reasons.push(r.reason);
  }
  return { ok: false, reason: reasons.join('; ') };
}

const external = process.env.KURRENTDB_CONNECTION_STRING;
const engine: Engine = external ? { ok: true, where: 'KURRENTDB_CONNECTION_STRING' } : await dockerEngine();

// Without a server the contract's own tests are reported as skipped, under a title giving the reason.
describe.skipIf(!engine.ok)(
  engine.ok
    ? `KurrentDB contract (${engine.where})`
    : `KurrentDB contract suite skipped: no Docker engine (${engine.reason})`,
  () => {
    let connectionString = external ?? '';
    let stopContainer: (() => Promise<unknown>) | undefined;

    beforeAll(async () => {
      if (external) return;
      const { KurrentDbContainer } = await import('@testcontainers/kurrentdb');
      const container = await new KurrentDbContainer(IMAGE).start();
      stopContainer = () => container.stop();
      connectionString = container.getConnectionString();
    }, 300_000);

    afterAll(async () => {
      await stopContainer?.();
    });

    eventStoreContract(`kurrentdb (${external ? 'external server' : IMAGE})`, () =>
      KurrentDbEventStore.connect({ connectionString }),
    );
  },
);
if (!engine.ok) console.warn(`[kurrentdb.int.test] KurrentDB contract suite skipped: ${engine.reason}`);
