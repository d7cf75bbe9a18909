import { TourniquetError } from '../platform/errors.ts';
import type { ConsoleSessionOptions } from '../services/api/console/session.ts';

/**
 * Console session settings from the environment, for `tourniquet start` and `serve projector`:
 * TOURNIQUET_CONSOLE_IDLE_MINUTES (default 30), TOURNIQUET_CONSOLE_SESSION_HOURS (default 12),
 * TOURNIQUET_CONSOLE_SAMESITE (lax | strict, default lax).
 */
export function consoleSessionsFromEnv(env: NodeJS.ProcessEnv = process.env): ConsoleSessionOptions {
  const out: ConsoleSessionOptions = {};
  const minutes = positive(env, 'TOURNIQUET_CONSOLE_IDLE_MINUTES');
  if (minutes !== undefined) out.idleTimeoutMs = minutes * 60_000;
  const hours = positive(env, 'TOURNIQUET_CONSOLE_SESSION_HOURS');
  if (hours !== undefined) out.absoluteTimeoutMs = hours * 3600_000;
  const sameSite = env.TOURNIQUET_CONSOLE_SAMESITE;
  if (sameSite !== undefined && sameSite !== '') {
    if (sameSite !== 'lax' && sameSite !== 'strict')
      throw new TourniquetError(
        'CONFIG_INVALID',
        `TOURNIQUET_CONSOLE_SAMESITE must be lax or strict, not ${sameSite}`,
      );
    out.sameSite = sameSite;
  }
  return out;
}

function positive(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new TourniquetError('CONFIG_INVALID', `${name} must be a positive number, not ${raw}`);
  return n;
}
