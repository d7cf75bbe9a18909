import { join, resolve } from 'node:path';
import { loadProvidersConfig } from '../../platform/providers-config.ts';
import { loadOrCreateSigningKey } from './keys.ts';

/**
 * `tourniquet signals jwks`: the public JWKS receivers verify SETs with, for handing out where no API
 * publishes it (distributed mode). The key: --key, else the providers file's signals.signingKeyFile,
 * else the one generated in the data directory. Nothing is created.
 */
export async function runSignalsJwks(
  opts: { key?: string; providers?: string; dataDir: string },
  out: NodeJS.WritableStream,
): Promise<number> {
  const fromConfig = opts.providers
    ? loadProvidersConfig(resolve(opts.providers)).signals?.signingKeyFile
    : undefined;
  const path = opts.key
    ? resolve(opts.key)
    : (fromConfig ?? join(resolve(opts.dataDir), 'ssf-signing-key.json'));
  const key = await loadOrCreateSigningKey(path, false);
  out.write(`${JSON.stringify({ keys: [key.publicJwk] }, null, 2)}\n`);
  return 0;
}
