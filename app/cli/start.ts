import type { Logger } from 'pino';
import type { JsonLimits } from '../../schemas/text.ts';
import { startEmbedded } from '../embedded.ts';
import { envInteger } from '../env.ts';

/** TOURNIQUET_MAX_JSON_DEPTH / TOURNIQUET_MAX_JSON_BYTES, as `tourniquet serve` reads them too. */
function jsonLimitsFromEnv(env: NodeJS.ProcessEnv): Partial<JsonLimits> {
  const out: Partial<JsonLimits> = {};
  const read = (name: string) => envInteger(env, name, { min: 1, what: 'a positive integer' });
  const depth = read('TOURNIQUET_MAX_JSON_DEPTH');
  const bytes = read('TOURNIQUET_MAX_JSON_BYTES');
  if (depth !== undefined) out.maxDepth = depth;
  if (bytes !== undefined) out.maxBytes = bytes;
  return out;
}

export async function runStart(opts: {
  dataDir: string;
  port: number;
  host: string;
  policy?: string;
  catalogue?: string;
  providers?: string;
  tick: number;
  anchor?: string;
  anchorInterval?: number;
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
    jsonLimits: jsonLimitsFromEnv(process.env),
    integrity: {
      ...(opts.anchor ? { anchor: opts.anchor } : {}),
      ...(opts.anchorInterval ? { anchorIntervalMs: opts.anchorInterval } : {}),
    },
  });
  // No long-lived credential in the banner (terminals and logs get copied around): a one-time
  // console link that expires in minutes, and the path of the file holding an admin token.
  const link = stack.loginLink();
  process.stdout.write(
    [
      `tourniquet listening on ${stack.url}`,
      `data: ${stack.storePath}`,
      `console sign-in link (one use, 10 minutes): ${link}`,
      `admin token file (valid 24 h, mode 0600): ${stack.adminTokenFile}`,
      'more credentials: tourniquet auth add-key | auth token (docs/console.md)',
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
