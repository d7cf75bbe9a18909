import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTime } from './time.ts';

describe('parseTime (hot-path event time)', () => {
  it('agrees with Date.parse on every canonical timestamp (toISOString form), years 0000-9999', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('0000-01-01T00:00:00.000Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        (d) => {
          const text = d.toISOString();
          expect(parseTime(text)).toBe(Date.parse(text));
          expect(parseTime(text)).toBe(d.getTime());
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('agrees with Date.parse on other ISO forms and on odd or invalid dates', () => {
    for (const s of [
      '2026-03-02T09:00:00Z',
      '2026-03-02T09:00:00.000+02:00',
      '2026-03-02T09:00:00.5Z',
      '2026-02-31T00:00:00.000Z',
      '2026-04-31T12:00:00.000Z',
      '2026-03-02T24:00:00.000Z',
      '2026-03-02T09:00:60.000Z',
      '2026-13-02T09:00:00.000Z',
      '2026-00-02T09:00:00.000Z',
      '2026-03-00T09:00:00.000Z',
      '2026-03-02T09:0a:00.000Z',
      'not a time at all, 24 ch',
      '',
    ]) {
      expect(Object.is(parseTime(s), Date.parse(s)), s).toBe(true);
    }
  });

  it('answers from its memo for repeated strings without changing the answer', () => {
    const a = '2026-03-02T09:00:00.000Z';
    const b = '2026-03-02T10:00:00.000Z';
    const c = '2026-03-02T11:00:00.000Z';
    for (const s of [a, b, a, b, c, a, c, b]) expect(parseTime(s)).toBe(Date.parse(s));
  });
});
