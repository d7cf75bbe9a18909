import { readFileSync } from 'node:fs';
import { TourniquetError } from '../../../platform/errors.ts';

/**
 * One secret of a providers-file entry, given inline (after ${VAR} interpolation), as a file
 * (`…File`, e.g. a mounted Kubernetes secret) or as the name of an environment variable (`…Env`).
 * The value is read when the provider is created and never logged.
 */
export interface SecretSource {
  value?: string | undefined;
  file?: string | undefined;
  env?: string | undefined;
}

function unreadable(what: string, why: string): TourniquetError {
  return new TourniquetError('CONFIG_INVALID', `cannot read ${what}: ${why}`, { status: 500 });
}

/** The secret, or undefined when none of the three is given. Throws CONFIG_INVALID naming the field. */
export function readSecret(
  src: SecretSource,
  what: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const given = [src.value, src.file, src.env].filter((x) => x !== undefined).length;
  if (given > 1) throw unreadable(what, 'give exactly one of the value, the …File or the …Env field');
  if (src.value !== undefined) return src.value;
  if (src.file !== undefined) {
    let s: string;
    try {
      s = readFileSync(src.file, 'utf8').trim();
    } catch (e) {
      throw unreadable(`${what} from ${src.file}`, (e as Error).message);
    }
    if (s === '') throw unreadable(`${what} from ${src.file}`, 'file is empty');
    return s;
  }
  if (src.env !== undefined) {
    const v = env[src.env];
    if (v === undefined || v === '') throw unreadable(what, `environment variable ${src.env} is not set`);
    return v;
  }
  return undefined;
}

/** As readSecret, for a secret the provider cannot work without. */
export function requireSecret(src: SecretSource, what: string, env: NodeJS.ProcessEnv = process.env): string {
  const s = readSecret(src, what, env);
  if (s === undefined) throw unreadable(what, 'no value, file or environment variable configured');
  return s;
}
