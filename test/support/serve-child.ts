/**
 * Test support: a Tourniquet service in its own process, started exactly as an operator starts it:
 *   node bin/tourniquet.js serve <service> --config FILE
 * (the CLI; environment variables override the file). Logs are pino JSON on stderr, parsed here; the
 * projector prints its URL and a local admin token on stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, waitFor } from './kafka.ts';

export interface CliServe {
  name: string;
  service: string;
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Parsed JSON log lines (stderr). */
  logs(): Array<Record<string, unknown>>;
  /** Partitions of `topic` in this member's latest assignment (the bus logs "partitions assigned"). */
  assignment(topic: string): number[];
  /** Every assignment of `topic` this member was given, in order. */
  assignments(topic: string): number[][];
  readonly exited: Promise<number | null>;
}

export function startCliServe(
  name: string,
  service: 'ingest' | 'decider' | 'executor' | 'projector',
  configFile: string,
  env: Record<string, string> = {},
): CliServe {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/tourniquet.js'), 'serve', service, '--config', configFile],
    {
      cwd: ROOT,
      env: { ...process.env, TOURNIQUET_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let partial = '';
  const lines: Array<Record<string, unknown>> = [];
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    const s = b.toString();
    out += s;
    partial += s;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const assignments = (topic: string) =>
    lines
      .filter((l) => l.msg === 'partitions assigned')
      .map((l) => ((l.assignment as Record<string, number[]>)[topic] ?? []).slice());
  return {
    name,
    service,
    child,
    output: () => out,
    logs: () => lines,
    assignment: (topic) => assignments(topic).at(-1) ?? [],
    assignments,
    exited,
  };
}

/** Waits for the log line saying the service is serving (fails early, with its output, if it exits). */
export async function serving(p: CliServe, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    () => {
      if (p.child.exitCode !== null)
        throw new Error(`${p.name} exited (${p.child.exitCode}): ${p.output().slice(-3000)}`);
      return p.logs().some((l) => typeof l.msg === 'string' && l.msg.endsWith('serving'));
    },
    timeoutMs,
    `${p.name} to serve (${p.output().slice(-1500)})`,
  );
  if (p.child.exitCode !== null) throw new Error(`${p.name} exited: ${p.output().slice(-3000)}`);
}

/** The projector's API URL and local admin token, printed on stdout. */
export async function apiOf(p: CliServe, timeoutMs = 90_000): Promise<{ url: string; token: string }> {
  return waitFor(
    () => {
      const url = /listening on (http:\/\/\S+)/.exec(p.output())?.[1];
      const token = /local admin token \(keep it secret\): (\S+)/.exec(p.output())?.[1];
      return url && token ? { url, token } : undefined;
    },
    timeoutMs,
    `${p.name}'s API (${p.output().slice(-1500)})`,
  );
}

export async function stopCli(p: CliServe, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 30_000);
  await p.exited;
  clearTimeout(timer);
}
