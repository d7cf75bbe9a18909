import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../bin/tourniquet.js', import.meta.url));

/** A child killed by a signal has exitCode null and signalCode set: both mean it is gone. */
const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

export interface RunningStack {
  child: ChildProcess;
  url: string;
  adminToken: string;
  output: () => string;
}

/** The admin token `start` / `serve projector` keep in the file the banner names (never printed). */
export function adminTokenFromBanner(output: string): string | undefined {
  const path = /admin token file[^:]*: (\S+)/.exec(output)?.[1];
  return path ? readFileSync(path, 'utf8').trim() : undefined;
}

/** Starts `tourniquet start` as a child process and waits until it prints its URL and token file. */
export async function startStackProcess(args: string[], timeoutMs = 60_000): Promise<RunningStack> {
  const child = spawn(process.execPath, [CLI, 'start', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TOURNIQUET_LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const url = /listening on (\S+)/.exec(out)?.[1];
    const token = adminTokenFromBanner(out);
    if (url && token) return { child, url, adminToken: token, output: () => out };
    if (exited(child)) throw new Error(`tourniquet start exited ${child.exitCode}:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`tourniquet start did not come up in ${timeoutMs} ms:\n${out}`);
}

export async function killHard(stack: RunningStack): Promise<void> {
  if (exited(stack.child)) return;
  stack.child.kill('SIGKILL');
  await once(stack.child, 'exit');
}

export async function stopGracefully(stack: RunningStack): Promise<void> {
  if (exited(stack.child)) return;
  stack.child.kill('SIGTERM');
  await once(stack.child, 'exit');
}
