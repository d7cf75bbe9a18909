import { describe, expect, it } from 'vitest';
import { consoleSessionsFromEnv } from './console-sessions.ts';

describe('console session settings from the environment', () => {
  it('defaults to nothing (the session module has the defaults) and reads each variable', () => {
    expect(consoleSessionsFromEnv({})).toEqual({});
    expect(
      consoleSessionsFromEnv({
        TOURNIQUET_CONSOLE_IDLE_MINUTES: '15',
        TOURNIQUET_CONSOLE_SESSION_HOURS: '8',
        TOURNIQUET_CONSOLE_SAMESITE: 'strict',
      }),
    ).toEqual({ idleTimeoutMs: 15 * 60_000, absoluteTimeoutMs: 8 * 3600_000, sameSite: 'strict' });
  });

  it('refuses a bad value, naming the variable', () => {
    expect(() => consoleSessionsFromEnv({ TOURNIQUET_CONSOLE_IDLE_MINUTES: '0' })).toThrow(
      /TOURNIQUET_CONSOLE_IDLE_MINUTES/,
    );
    expect(() => consoleSessionsFromEnv({ TOURNIQUET_CONSOLE_SESSION_HOURS: 'ten' })).toThrow(
      /TOURNIQUET_CONSOLE_SESSION_HOURS/,
    );
    expect(() => consoleSessionsFromEnv({ TOURNIQUET_CONSOLE_SAMESITE: 'none' })).toThrow(/lax or strict/);
  });
});
