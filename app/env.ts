import { TourniquetError } from '../platform/errors.ts';

/**
 * A whole number from the environment: undefined when the variable is unset or empty, a
 * CONFIG_INVALID error naming it when it is not a whole number of at least `min`.
 */
export function envInteger(
  env: NodeJS.ProcessEnv,
  name: string,
  opts: { min: number; what: string },
): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < opts.min)
    throw new TourniquetError('CONFIG_INVALID', `${name} must be ${opts.what}, got ${JSON.stringify(v)}`);
  return n;
}
