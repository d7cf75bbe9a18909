import { z } from 'zod';

/**
 * Canonical text and bounded JSON at the boundary. Every entry point (HTTP ingest, the Kafka raw and
 * normalized consumers, the replay history reader, the normalizers) validates detections through
 * schemas/detection.ts, which builds on these, so one definition decides what may reach the store.
 *
 * Why: the event store hashes what it is given and stores UTF-8. A string that is not well-formed
 * UTF-16 (a lone surrogate) cannot be stored as given (SQLite and gRPC write U+FFFD in its place), so
 * the stored row would no longer match its hash. NUL in an identifier has no meaning and is cut by
 * many downstream tools (C strings, log pipelines, identity providers). Limits count Unicode code
 * points, as JSON Schema's maxLength does, not UTF-16 units.
 */

// ES2024 string methods (Node 20+); the project's lib is ES2023.
declare global {
  interface String {
    isWellFormed(): boolean;
    toWellFormed(): string;
  }
}

/** Code points in `s` (a surrogate pair is one; a lone surrogate is one). */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n -= 1;
        i += 1;
      }
    }
  }
  return n;
}

/**
 * Whether `s` is acceptable text of `min`..`max` code points: well-formed, and without NUL unless
 * `nul` allows it. Cheap for the common case (the UTF-16 length already decides the bounds).
 */
export function isCanonicalText(s: unknown, min: number, max: number, nul = false): s is string {
  if (typeof s !== 'string' || s.length < min) return false;
  if (s.length > max && codePointLength(s) > max) return false;
  if (!s.isWellFormed()) return false;
  return nul || !s.includes('\0');
}

/** The first reason `s` is not canonical text of `min`..`max` code points, or undefined. */
export function textProblem(s: string, min: number, max: number, nul: boolean): string | undefined {
  if (!s.isWellFormed()) return 'is not well-formed Unicode (it holds a lone UTF-16 surrogate)';
  if (!nul && s.includes('\0')) return 'must not contain NUL (U+0000)';
  if (s.length < min) return min === 1 ? 'must not be empty' : `must be at least ${min} characters`;
  if (s.length > max) {
    const n = codePointLength(s);
    if (n > max) return `must be at most ${max} characters (code points); got ${n}`;
  }
  return undefined;
}

/**
 * A zod string of `min`..`max` code points, well-formed, without NUL unless `nul` (free text such
 * as titles may hold it; identifiers may not). Documented with minLength/maxLength (JSON Schema
 * counts code points too).
 */
export function canonicalText(min: number, max: number, opts: { nul?: boolean } = {}) {
  const nul = opts.nul ?? false;
  return z
    .string()
    .superRefine((s, ctx) => {
      const problem = textProblem(s, min, max, nul);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, input: s });
    })
    .meta({
      ...(min > 0 ? { minLength: min } : {}),
      maxLength: max,
      // The NUL rule as a pattern every validator compiles (ECMAScript, Python, Rust's regex);
      // lone surrogates are not expressible there (Rust's regex has no surrogate code points), so
      // the document says so in words and the server refuses them.
      ...(nul ? {} : { pattern: '^[^\\u0000]*$' }),
    });
}

// ---------------------------------------------------------------------------------------------------
// Bounded JSON values: `raw` and `evidence` carry vendor JSON of any shape. Nesting and size are
// bounded before anything else looks at them, so nothing downstream (JSON.stringify in the append,
// digests, projections) can overflow the stack or be starved by one record.

export interface JsonLimits {
  /** Deepest nesting of objects and arrays allowed (the value itself is depth 1). */
  maxDepth: number;
  /** Largest JSON text allowed, in bytes of UTF-8. */
  maxBytes: number;
}

export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxDepth: 64,
  maxBytes: 256 * 1024,
});

let limits: JsonLimits = { ...DEFAULT_JSON_LIMITS };

/**
 * Sets the limits on `raw` and `evidence` for this process (from configuration, at start-up, before
 * any input is read). Returns the previous ones, so tests can restore them.
 */
export function configureJsonLimits(next: Partial<JsonLimits>): JsonLimits {
  const previous = limits;
  const merged = { ...limits, ...next };
  for (const [k, v] of Object.entries(merged)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${v}`);
  }
  limits = merged;
  return previous;
}

export function jsonLimits(): Readonly<JsonLimits> {
  return limits;
}

export type JsonProblem =
  | { kind: 'depth'; path: string; message: string; limit: number }
  | { kind: 'size'; path: string; message: string; limit: number }
  | { kind: 'text'; path: string; message: string }
  | { kind: 'value'; path: string; message: string };

const utf8Length = (s: string): number => {
  // UTF-8 length of well-formed text: 1 byte below U+0080, 2 below U+0800, 3 for the BMP, 4 a pair.
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // each half of a pair counts 2: 4 for the pair
    if (c >= 0x80) n += c >= 0x800 && !(c >= 0xd800 && c <= 0xdfff) ? 2 : 1;
  }
  return n;
};

/** Bytes JSON adds around a string: quotes, and escapes for controls, quote and backslash. */
function quotedLength(s: string): number {
  let n = utf8Length(s) + 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20)
      n += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 1 : 5; // \n or \u0001
    else if (c === 0x22 || c === 0x5c) n += 1;
  }
  return n;
}

/**
 * Checks a JSON value against the limits without recursion (a 100,000-deep value is refused, not a
 * stack overflow): nesting, the size of its JSON text (as JSON.stringify writes it, in UTF-8 bytes),
 * well-formed text in every string and key, and nothing JSON cannot carry (functions, symbols,
 * bigints, non-finite numbers: values that would be stored as something else than they are).
 * `path` names the value in problems (e.g. `3.raw`). Returns the first problem, or undefined.
 */
export function jsonValueProblem(
  value: unknown,
  path: string,
  lim: Readonly<JsonLimits> = limits,
): JsonProblem | undefined {
  let bytes = 0;
  // Entries: a value, its depth and how it was reached (its parent and key); the path string is
  // built only when a problem is reported, so a clean value costs no string per member.
  const stack: PendingValue[] = [{ v: value, depth: 1, parent: undefined, key: '' }];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    const { v, depth } = entry;
    if (typeof v === 'string') {
      if (!v.isWellFormed())
        return {
          kind: 'text',
          path: pathOf(entry, path),
          message: 'is not well-formed Unicode (it holds a lone UTF-16 surrogate)',
        };
      bytes += quotedLength(v);
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v))
        return { kind: 'value', path: pathOf(entry, path), message: 'must be a finite number' };
      bytes += String(v).length;
    } else if (typeof v === 'boolean') bytes += v ? 4 : 5;
    else if (v === null) bytes += 4;
    else if (typeof v === 'object') {
      if (depth > lim.maxDepth) {
        return {
          kind: 'depth',
          path: pathOf(entry, path),
          message: `nesting exceeds the limit of ${lim.maxDepth} levels`,
          limit: lim.maxDepth,
        };
      }
      if (Array.isArray(v)) {
        bytes += 2 + Math.max(0, v.length - 1);
        for (let i = v.length - 1; i >= 0; i--)
          stack.push({ v: v[i], depth: depth + 1, parent: entry, key: i });
      } else {
        const keys = Object.keys(v);
        bytes += 2 + Math.max(0, keys.length - 1);
        for (let i = keys.length - 1; i >= 0; i--) {
          const k = keys[i]!;
          if (!k.isWellFormed())
            return {
              kind: 'text',
              path: pathOf(entry, path),
              message: 'has a key that is not well-formed Unicode',
            };
          bytes += quotedLength(k) + 1;
          stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1, parent: entry, key: k });
        }
      }
    } else if (v !== undefined) {
      return {
        kind: 'value',
        path: pathOf(entry, path),
        message: `holds a ${typeof v}, which JSON cannot carry`,
      };
    }
    if (bytes > lim.maxBytes) {
      return {
        kind: 'size',
        path,
        message: `is larger than the limit of ${lim.maxBytes} bytes of JSON`,
        limit: lim.maxBytes,
      };
    }
  }
  return undefined;
}

/** A value still to be checked by jsonValueProblem, and how it was reached from the root. */
interface PendingValue {
  v: unknown;
  depth: number;
  parent: PendingValue | undefined;
  key: string | number;
}

/** The path of a pending value: the root's path, then `.key` for each step down to it. */
function pathOf(entry: PendingValue, rootPath: string): string {
  const keys: Array<string | number> = [];
  for (let e: PendingValue | undefined = entry; e?.parent !== undefined; e = e.parent) keys.push(e.key);
  let at = rootPath;
  for (let i = keys.length - 1; i >= 0; i--) at = `${at}.${keys[i]}`;
  return at;
}

/** Issue params zod carries for a JSON limit, so the HTTP layer can answer 413 for size. */
export const JSON_LIMIT_ISSUE = 'json_limit';

/** A zod refinement adding the first JSON problem of the value (at its own path) as an issue. */
export function checkJsonValue(v: unknown, ctx: z.RefinementCtx): void {
  const p = jsonValueProblem(v, '');
  if (!p) return;
  const rel = p.path.split('.').filter((s) => s !== '');
  ctx.addIssue({
    code: 'custom',
    message: p.message,
    input: v,
    path: rel,
    params: { [JSON_LIMIT_ISSUE]: p.kind, ...('limit' in p ? { limit: p.limit } : {}) },
  });
}

/**
 * Whether JSON text nests objects and arrays deeper than `limit`, found by a scan of the text (no
 * parse, no recursion): a body is checked before JSON.parse and the secure-parse walk see it.
 */
export function jsonTextTooDeep(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i += 1; // skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth -= 1;
  }
  return false;
}
