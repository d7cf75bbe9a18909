import { describe, expect, it } from 'vitest';
import { envInteger } from './env.ts';

describe('envInteger', () => {
  const opts = { min: 1, what: 'a positive integer' };

  it('is undefined when the variable is unset or empty', () => {
    expect(envInteger({}, 'TQ_X', opts)).toBeUndefined();
    expect(envInteger({ TQ_X: '' }, 'TQ_X', opts)).toBeUndefined();
  });

  it('reads a whole number at or above the minimum', () => {
    expect(envInteger({ TQ_X: '42' }, 'TQ_X', opts)).toBe(42);
    expect(envInteger({ TQ_X: '0' }, 'TQ_X', { min: 0, what: 'a whole number' })).toBe(0);
  });

  it.each(['0', '-3', '1.5', 'ten', '9007199254740993'])(
    'refuses %s with CONFIG_INVALID naming the variable and what it must be',
    (v) => {
      expect(() => envInteger({ TQ_X: v }, 'TQ_X', opts)).toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          message: `TQ_X must be a positive integer, got ${JSON.stringify(v)}`,
        }),
      );
    },
  );
});
