/**
 * Test support: a Tourniquet service in a child process, with its output captured and its pino JSON
 * log lines (stderr) parsed, so tests can wait on what the service says it did.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServiceProcess {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Parsed JSON log lines (pino, stderr). */
  logs(): Array<Record<string, unknown>>;
  /** Partitions of `topic` in this member's latest assignment (the bus logs "partitions assigned"). */
  assignment(topic: string): number[];
  /** Every assignment of `topic` this member was given, in order. */
  assignments(topic: string): number[][];
  readonly exited: Promise<number | null>;
}

/** Runs `node <args>` from the repository root with logs at info level, `env` on top. */
export function spawnService(args: string[], env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, TOURNIQUET_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const assignments = (topic: string) =>
    lines
      .filter((l) => l.msg === 'partitions assigned')
      .map((l) => ((l.assignment as Record<string, number[]>)[topic] ?? []).slice());
  return {
    child,
    output: () => out,
    logs: () => lines,
    assignment: (topic) => assignments(topic).at(-1) ?? [],
    assignments,
    exited,
  };
}

/** Stops it with `signal`, SIGKILL after 30 s, and waits for the exit. */
export async function stopService(p: ServiceProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 30_000);
  await p.exited;
  clearTimeout(timer);
}
