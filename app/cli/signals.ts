import { resolve } from 'node:path';
import { TourniquetError } from '../../platform/errors.ts';
import { loadOrCreateSigningKey, signingKeyPathOf } from '../../services/signals/keys.ts';
import { redeliverDeadLetters } from '../../services/signals/redeliver.ts';
import { deadLetterPathOf } from '../../services/signals/transmitter.ts';
import { loadProvidersConfig, signalReceiversOf } from '../providers-config.ts';

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
  const path = opts.key ? resolve(opts.key) : signingKeyPathOf(fromConfig, resolve(opts.dataDir));
  const key = await loadOrCreateSigningKey(path, false);
  out.write(`${JSON.stringify({ keys: [key.publicJwk] }, null, 2)}\n`);
  return 0;
}

/**
 * `tourniquet signals redeliver`: the SETs receivers refused for good, sent again once their side is
 * fixed (services/signals/redeliver.ts), to the receivers as the providers file configures them now.
 */
export async function runSignalsRedeliver(
  opts: { providers: string; dataDir: string; receiver?: string[]; file?: string; dryRun?: boolean },
  out: NodeJS.WritableStream,
): Promise<number> {
  const signals = loadProvidersConfig(resolve(opts.providers)).signals;
  if (!signals)
    throw new TourniquetError('CONFIG_INVALID', `${opts.providers} has no signals block`, { status: 500 });
  const live = deadLetterPathOf(resolve(opts.dataDir));
  const report = await redeliverDeadLetters({
    path: opts.file ? resolve(opts.file) : live,
    keepPath: live,
    receivers: signalReceiversOf(signals),
    ...(opts.receiver?.length ? { only: opts.receiver } : {}),
    dryRun: Boolean(opts.dryRun),
  });
  out.write(`${JSON.stringify(report, null, 2)}\n`);
  return report.refused + report.failed > 0 ? 2 : 0;
}
