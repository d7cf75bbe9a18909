import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TourniquetError } from '../../../platform/errors.ts';
import { NormalizedDetection } from '../../../schemas/detection.ts';
import { loadFixtures } from '../../../test/support/normalizer-fixtures.ts';
import { FORMATS, normalize } from './index.ts';

const fixtures = loadFixtures();

/** Either a detection that passes the schema, or a NORMALIZE_FAILED TourniquetError; nothing else. */
async function holds(record: unknown, format: (typeof FORMATS)[number] | 'auto' = 'auto'): Promise<boolean> {
  try {
    const d = await normalize(record, { format });
    NormalizedDetection.parse(d);
    return true;
  } catch (e) {
    if (!(e instanceof TourniquetError) || e.code !== 'NORMALIZE_FAILED') throw e;
    expect(e.message.length).toBeGreaterThan(0);
    return true;
  }
}

/** Replaces the value at a random path of a fixture with arbitrary JSON (or deletes it). */
function mutate(record: unknown, pathPicks: number[], replacement: unknown, remove: boolean): unknown {
  const copy = structuredClone(record);
  let cur: unknown = copy;
  for (const [depth, pick] of pathPicks.entries()) {
    if (typeof cur !== 'object' || cur === null) return copy;
    const keys = Object.keys(cur);
    if (keys.length === 0) return copy;
    const key = keys[pick % keys.length]!;
    const child = (cur as Record<string, unknown>)[key];
    const last = depth === pathPicks.length - 1 || typeof child !== 'object' || child === null;
    if (last) {
      if (remove && !Array.isArray(cur)) delete (cur as Record<string, unknown>)[key];
      else (cur as Record<string, unknown>)[key] = replacement;
      return copy;
    }
    cur = child;
  }
  return copy;
}

describe('normalize never throws anything but TourniquetError, and what it returns is valid', () => {
  it('arbitrary JSON, auto-detected', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), (v) => holds(v)),
      { numRuns: 300 },
    );
  });

  it('arbitrary JSON objects forced through every normalizer', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom(...FORMATS), (v, f) =>
        holds(v, f),
      ),
      { numRuns: 300 },
    );
  });

  it('fixtures with one field replaced by arbitrary JSON or removed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...fixtures),
        fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
        fc.jsonValue({ maxDepth: 3 }),
        fc.boolean(),
        (fx, picks, replacement, remove) => holds(mutate(fx.record, picks, replacement, remove)),
      ),
      { numRuns: 1500 },
    );
  });

  it('arbitrary strings (JWT-shaped or not) as SETs', async () => {
    const seg = fc.string({
      unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.tuple(seg, seg, seg).map(([a, b, c]) => `${a}.${b}.${c}`),
        ),
        (s) => holds(s),
      ),
      { numRuns: 300 },
    );
  });
});
