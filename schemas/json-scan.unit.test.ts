import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { scanJsonText } from './json-scan.ts';
import { JsonText } from './json-text.ts';
import { checkedJsonText, jsonValueProblem } from './text.ts';

const WIDE = { maxDepth: 64, maxBytes: 1 << 30 };

/** The reference: JSON.parse, then the limits check over the parsed value. */
function reference(text: string, lim = WIDE): 'ok' | 'refused' {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'refused';
  }
  return jsonValueProblem(v, 'raw', lim) ? 'refused' : 'ok';
}

const scanned = (text: string, lim = WIDE) =>
  typeof scanJsonText(text, lim.maxDepth, lim.maxBytes) === 'number' ? 'ok' : 'refused';

/** JSON texts, some of them damaged by one edit (a character dropped, doubled or replaced). */
const texts = fc.oneof(
  fc.json({ maxDepth: 6 }),
  fc.string({ unit: 'binary' }),
  fc
    .tuple(
      fc.json({ maxDepth: 4 }),
      fc.nat(),
      fc.constantFrom('', '"', '\\', '{', ']', ',', ':', '\ud800', '\\ud800', '1e999', ' '),
    )
    .map(([t, at, s]) => {
      const i = t.length === 0 ? 0 : at % t.length;
      return t.slice(0, i) + s + t.slice(i + (at % 2));
    }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v, null, 2)),
);

describe('scanJsonText (JSON checked without parsing)', () => {
  it('accepts exactly what JSON.parse and the limits check accept', () => {
    fc.assert(
      fc.property(texts, (t) => {
        expect(scanned(t)).toBe(reference(t));
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses nesting beyond the limit, lone surrogates (raw or escaped), non-finite numbers, bad syntax', () => {
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect(scanJsonText(deep(64), 64, 1e6)).toBe(128);
    expect(scanJsonText(deep(65), 64, 1e6)).toMatchObject({ kind: 'depth' });
    expect(scanJsonText(deep(100_000), 64, 1e6)).toMatchObject({ kind: 'depth' });
    expect(scanJsonText('"\\ud800"', 64, 1e6)).toMatchObject({ kind: 'text' });
    expect(scanJsonText('"\\udc00\\ud800"', 64, 1e6)).toMatchObject({ kind: 'text' });
    expect(scanJsonText('"\ud800"', 64, 1e6)).toMatchObject({ kind: 'text' });
    expect(scanJsonText('"\\ud83d\\ude00"', 64, 1e6)).toBe(14);
    expect(scanJsonText('[1e400]', 64, 1e6)).toMatchObject({ kind: 'value' });
    for (const bad of [
      '',
      ' ',
      '{',
      '[1,]',
      '{"a"}',
      '{"a":1,}',
      '01',
      '1.',
      '-',
      'tru',
      '"\t"',
      '[1] 2',
      "{'a':1}",
    ])
      expect(scanJsonText(bad, 64, 1e6), bad).toMatchObject({ kind: 'syntax' });
    expect(scanJsonText('"ééé"', 64, 8)).toBe(8);
    expect(scanJsonText('["\ud83d\ude00",1]', 64, 10)).toBe(10);
    expect(scanJsonText('"éééé"', 64, 8)).toMatchObject({ kind: 'size' });
  });

  it('a checked text reads as its JSON value and is counted, not scanned again, by the limits check', () => {
    const text = '{"vendor":"okta","list":[1,2,{"a":null}]}';
    const t = checkedJsonText(text, 'raw');
    expect(t).toBeInstanceOf(JsonText);
    expect(JSON.stringify({ raw: t })).toBe(`{"raw":${text}}`);
    expect((t as JsonText).value).toEqual(JSON.parse(text));
    expect(jsonValueProblem(t, 'raw')).toBeUndefined();
    expect(checkedJsonText('{"a":', 'raw')).toMatchObject({ kind: 'value', path: 'raw' });
    // one made without the check is scanned by it
    expect(jsonValueProblem(new JsonText('[[[1]]]'), 'raw', { maxDepth: 2, maxBytes: 100 })).toMatchObject({
      kind: 'depth',
    });
  });
});
