/**
 * Test support: a Tourniquet service in its own process, started exactly as an operator starts it:
 *   node bin/tourniquet.js serve <service> --config FILE
 * (the CLI; environment variables override the file). Logs are pino JSON on stderr, parsed here; the
 * projector prints its URL and the path of a file holding a local admin token on stdout.
 */
import { join } from 'node:path';
import { adminTokenFromBanner } from './cli.ts';
import { waitFor } from './kafka.ts';
import { ROOT, type ServiceProcess, spawnService, stopService } from './service-process.ts';

export interface CliServe extends ServiceProcess {
  name: string;
  service: string;
}

export function startCliServe(
  name: string,
  service: 'ingest' | 'decider' | 'executor' | 'projector',
  configFile: string,
  env: Record<string, string> = {},
): CliServe {
  const p = spawnService([join(ROOT, 'bin/tourniquet.js'), 'serve', service, '--config', configFile], env);
  return { ...p, name, service };
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

/** The projector's API URL (printed on stdout) and local admin token (in the file it names). */
export async function apiOf(p: CliServe, timeoutMs = 90_000): Promise<{ url: string; token: string }> {
  return waitFor(
    () => {
      const url = /listening on (http:\/\/\S+)/.exec(p.output())?.[1];
      const token = adminTokenFromBanner(p.output());
      return url && token ? { url, token } : undefined;
    },
    timeoutMs,
    `${p.name}'s API (${p.output().slice(-1500)})`,
  );
}

export const stopCli = stopService;
