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
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
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
    out += `${first ? '' : ','}${JSON.stringify(k)}:${text}`;
    first = false;
  }
  return `${out}}`;
}

/** An array index as JS objects order them: canonical decimal, below 2^32 - 1. */
const isArrayIndex = (k: string): boolean =>
  k.length > 0 && k.length <= 10 && /^(?:0|[1-9]\d*)$/.test(k) && Number(k) < 4294967295;

/**
 * The keys in the order the sorted-copy definition (the original one, which digests already on
 * record were made with) produces: a JS object lists array-index keys first, in numeric order,
 * whatever order they were added in; the other keys then follow sorted.
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  // An own "__proto__" key never survived the copy (assigning it sets the prototype): left out here too.
  const keys = Object.keys(record)
    .filter((k) => k !== '__proto__')
    .sort();
  if (!keys.some(isArrayIndex)) return keys;
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
