import { hash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level: the same value always gives the same text. Exactly
 * `JSON.stringify` with sorted keys (toJSON honoured; undefined, functions and symbols dropped from
 * objects and null in arrays), written out directly: a replacer that copies every object costs ten
 * times as much, and every proposal and policy is digested.
 */
export function canonicalJson(value: unknown): string {
  return canonical(value, '') as string;
}

function canonical(value: unknown, key: string): string | undefined {
  let v = value;
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON(key: string): unknown }).toJSON(key);
  }
  if (typeof v === 'string') return quote(v);
  if (v === null || typeof v !== 'object') return primitive(v);
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ',';
      out += canonical(v[i], String(i)) ?? 'null';
    }
    return `${out}]`;
  }
  const record = v as Record<string, unknown>;
  let out = '{';
  let first = true;
  for (const k of sortedKeys(record)) {
    const text = canonical(record[k], k);
    if (text === undefined) continue;
    if (!first) out += ',';
    out += quote(k);
    out += ':';
    out += text;
    first = false;
  }
  return `${out}}`;
}

/** Characters JSON.stringify escapes in a string: controls, quote, backslash, lone surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON.stringify writes it; most need no escaping and are quoted as they are. */
function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function primitive(v: unknown): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return JSON.stringify(v); // null, undefined, functions, symbols; a bigint throws as JSON.stringify does
}

/** An array index as JS objects order them: canonical decimal, below 2^32 - 1. */
const isArrayIndex = (k: string): boolean => {
  const c = k.charCodeAt(0);
  return c >= 48 && c <= 57 && k.length <= 10 && /^(?:0|[1-9]\d*)$/.test(k) && Number(k) < 4294967295;
};

/**
 * The keys in the order the sorted-copy definition (the original one, which digests already on
 * record were made with) produces: a JS object lists array-index keys first, in numeric order,
 * whatever order they were added in; the other keys then follow sorted (by UTF-16 code units, as
 * Array.prototype.sort without a comparator orders strings).
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  let indexLike = false;
  if (keys.length > 32) {
    keys.sort();
    indexLike = keys.some(isArrayIndex);
  } else {
    // Insertion sort: most objects digested have a handful of keys, often already in order.
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (!indexLike && isArrayIndex(k)) indexLike = true;
      let j = i - 1;
      while (j >= 0 && keys[j]! > k) {
        keys[j + 1] = keys[j]!;
        j--;
      }
      keys[j + 1] = k;
    }
  }
  // An own "__proto__" key never survived the copy (assigning it sets the prototype): left out here too.
  const proto = keys.indexOf('__proto__');
  if (proto >= 0) keys.splice(proto, 1);
  if (!indexLike) return keys;
  const indices = keys.filter(isArrayIndex).sort((a, b) => Number(a) - Number(b));
  return [...indices, ...keys.filter((k) => !isArrayIndex(k))];
}

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** `sha256:<hex>` of the canonical JSON of a value. */
export function digestOf(value: unknown): string {
  return `sha256:${sha256Hex(canonicalJson(value))}`;
}
