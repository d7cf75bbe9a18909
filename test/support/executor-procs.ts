/**
 * Executor child processes (test/support/executor-child.ts) for the multi-process e2e tests: start one
 * with a provider configuration and a journal, wait until it is subscribed, SIGKILL or SIGTERM it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KeycloakHandle } from './keycloak.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./executor-child.ts', import.meta.url));

export interface ExecutorProc {
  child: ChildProcess;
  id: string;
  output: () => string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Writes a provider configuration for the local Keycloak (password grant on master). */
export function writeKeycloakProviders(
  dir: string,
  kc: KeycloakHandle,
  executor: Record<string, unknown> = {},
  timeoutMs = 10_000,
): string {
  const path = join(dir, 'providers.json');
  writeFileSync(
    path,
    JSON.stringify({
      providers: {
        keycloak: {
          type: 'keycloak',
          baseUrl: kc.baseUrl,
          adminRealm: kc.admin.realm,
          username: kc.admin.username,
          password: kc.admin.password,
          timeoutMs,
        },
      },
      executor,
    }),
  );
  return path;
}

export async function startExecutorProc(opts: {
  id: string;
  store: string;
  providers: string;
  journal: string;
  killAt?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<ExecutorProc> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TQ_STORE: opts.store,
      TQ_PROVIDERS: opts.providers,
      TQ_EXECUTOR_ID: opts.id,
      TQ_JOURNAL: opts.journal,
      ...(opts.killAt ? { TQ_KILL_AT: opts.killAt } : {}),
      ...opts.env,
    },
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const proc: ExecutorProc = { child, id: opts.id, output: () => out, exited };
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (!out.includes('ready')) {
    if (child.exitCode !== null || child.signalCode !== null) return proc; // may have killed itself already
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`executor ${opts.id} did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return proc;
}

export async function killProc(p: ExecutorProc): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await p.exited;
}

export async function stopProc(p: ExecutorProc, timeoutMs = 30_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  await p.exited;
  clearTimeout(timer);
}
