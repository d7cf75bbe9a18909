import type { Logger } from 'pino';
import { startEmbedded } from '../embedded.ts';

export async function runStart(opts: {
  dataDir: string;
  port: number;
  host: string;
  policy?: string;
  catalogue?: string;
  providers?: string;
  tick: number;
  log: Logger;
}): Promise<number> {
  const stack = await startEmbedded({
    dataDir: opts.dataDir,
    port: opts.port,
    host: opts.host,
    tickMs: opts.tick,
    log: opts.log,
    ...(opts.policy ? { policyPath: opts.policy } : {}),
    ...(opts.catalogue ? { cataloguePath: opts.catalogue } : {}),
    ...(opts.providers ? { providersPath: opts.providers } : {}),
  });
  process.stdout.write(
    [
      `tourniquet listening on ${stack.url}`,
      `data: ${stack.storePath}`,
      `local admin token (keep it secret): ${stack.adminToken}`,
      'stop with Ctrl-C',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await stack.close();
  return 0;
}
