/**
 * Checks JSON text without building it: syntax (RFC 8259), nesting depth, size, well-formed text
 * (no lone surrogate, raw or escaped) and finite numbers, in one pass over the characters with no
 * allocation and no recursion. The decider's consumer checks a detection's `raw` record this way and
 * keeps it as text (JsonText): nothing on the decision path reads it, and the store keeps the text as
 * it came. What it accepts, JSON.parse accepts and gives a value `jsonValueProblem` (schemas/text.ts)
 * accepts (a property test holds it to that).
 */

const WS = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const DIGIT = (c: number) => c >= 0x30 && c <= 0x39;
const HEX = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** Where the scanner is: a value is due, a container was just opened, a key is due, or a value ended. */
const VALUE = 0;
const ARRAY_START = 1;
const OBJECT_START = 2;
const KEY = 3;
const AFTER = 4;
const IN_OBJECT = 1;
const IN_ARRAY = 2;

class ScanFailure {
  readonly kind: 'syntax' | 'depth' | 'text' | 'value';
  readonly message: string;
  constructor(kind: ScanFailure['kind'], message: string) {
    this.kind = kind;
    this.message = message;
  }
}

/** The index after the 4 hex digits of `\u` at `i` (the backslash), and their value. */
function unicodeEscape(t: string, i: number): number {
  if (t.charCodeAt(i + 1) !== 0x75) return -1;
  for (let k = i + 2; k < i + 6; k++) if (!HEX(t.charCodeAt(k))) return -1;
  return Number.parseInt(t.slice(i + 2, i + 6), 16);
}

/** UTF-8 bytes beyond one per UTF-16 unit, counted by scanString (only strings hold non-ASCII text). */
let extraBytes = 0;

/** Scans the string starting at the quote at `i`; returns the index after its closing quote. */
function scanString(t: string, i: number): number {
  const n = t.length;
  let j = i + 1;
  while (j < n) {
    const c = t.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c < 0x20) throw new ScanFailure('syntax', `unescaped control character at ${j}`);
    if (c !== 0x5c) {
      // each half of a surrogate pair counts 2: 4 for the pair
      if (c >= 0x80) extraBytes += c >= 0x800 && !(c >= 0xd800 && c <= 0xdfff) ? 2 : 1;
      j++;
      continue;
    }
    const e = t.charCodeAt(j + 1);
    if (
      e === 0x22 ||
      e === 0x5c ||
      e === 0x2f ||
      e === 0x62 ||
      e === 0x66 ||
      e === 0x6e ||
      e === 0x72 ||
      e === 0x74
    ) {
      j += 2;
      continue;
    }
    const u = unicodeEscape(t, j);
    if (u < 0) throw new ScanFailure('syntax', `invalid escape at ${j}`);
    if (u >= 0xdc00 && u <= 0xdfff) throw new ScanFailure('text', 'holds a lone UTF-16 surrogate (escaped)');
    if (u >= 0xd800 && u <= 0xdbff) {
      const low = t.charCodeAt(j + 6) === 0x5c ? unicodeEscape(t, j + 6) : -1;
      if (!(low >= 0xdc00 && low <= 0xdfff))
        throw new ScanFailure('text', 'holds a lone UTF-16 surrogate (escaped)');
      j += 12;
      continue;
    }
    j += 6;
  }
  throw new ScanFailure('syntax', 'unterminated string');
}

/** Scans the number at `i`; returns the index after it. */
function scanNumber(t: string, i: number): number {
  const start = i;
  if (t.charCodeAt(i) === 0x2d) i++;
  if (t.charCodeAt(i) === 0x30) i++;
  else if (DIGIT(t.charCodeAt(i))) while (DIGIT(t.charCodeAt(i))) i++;
  else throw new ScanFailure('syntax', `invalid number at ${start}`);
  let plain = true;
  if (t.charCodeAt(i) === 0x2e) {
    i++;
    if (!DIGIT(t.charCodeAt(i))) throw new ScanFailure('syntax', `invalid number at ${start}`);
    while (DIGIT(t.charCodeAt(i))) i++;
  }
  const e = t.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    plain = false;
    i++;
    const s = t.charCodeAt(i);
    if (s === 0x2b || s === 0x2d) i++;
    if (!DIGIT(t.charCodeAt(i))) throw new ScanFailure('syntax', `invalid number at ${start}`);
    while (DIGIT(t.charCodeAt(i))) i++;
  }
  // only an exponent or a very long literal can overflow to Infinity
  if ((!plain || i - start > 300) && !Number.isFinite(Number(t.slice(start, i))))
    throw new ScanFailure('value', 'must be a finite number');
  return i;
}

function literal(t: string, i: number, word: string): number {
  if (!t.startsWith(word, i)) throw new ScanFailure('syntax', `unexpected token at ${i}`);
  return i + word.length;
}

/** Scans a whole JSON text; throws ScanFailure. */
function scan(t: string, maxDepth: number): void {
  const n = t.length;
  const stack: number[] = [];
  let state = VALUE;
  let i = 0;
  for (;;) {
    while (i < n && WS(t.charCodeAt(i))) i++;
    if (state === AFTER && stack.length === 0) {
      if (i !== n) throw new ScanFailure('syntax', `unexpected text after the value at ${i}`);
      return;
    }
    if (i >= n) throw new ScanFailure('syntax', 'unexpected end of text');
    const c = t.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (state === AFTER) {
      if (c === 0x2c) state = top === IN_OBJECT ? KEY : VALUE;
      else if ((c === 0x7d && top === IN_OBJECT) || (c === 0x5d && top === IN_ARRAY)) stack.pop();
      else throw new ScanFailure('syntax', `unexpected token at ${i}`);
      i++;
      continue;
    }
    if (state === OBJECT_START || state === KEY) {
      if (c === 0x7d && state === OBJECT_START) {
        stack.pop();
        state = AFTER;
        i++;
        continue;
      }
      if (c !== 0x22) throw new ScanFailure('syntax', `expected a key at ${i}`);
      i = scanString(t, i);
      while (i < n && WS(t.charCodeAt(i))) i++;
      if (t.charCodeAt(i) !== 0x3a) throw new ScanFailure('syntax', `expected ':' at ${i}`);
      i++;
      state = VALUE;
      continue;
    }
    if (state === ARRAY_START && c === 0x5d) {
      stack.pop();
      state = AFTER;
      i++;
      continue;
    }
    // a value is due
    if (c === 0x7b || c === 0x5b) {
      if (stack.length + 1 > maxDepth)
        throw new ScanFailure('depth', `nesting exceeds the limit of ${maxDepth} levels`);
      stack.push(c === 0x7b ? IN_OBJECT : IN_ARRAY);
      state = c === 0x7b ? OBJECT_START : ARRAY_START;
      i++;
      continue;
    }
    if (c === 0x22) i = scanString(t, i);
    else if (c === 0x2d || DIGIT(c)) i = scanNumber(t, i);
    else if (c === 0x74) i = literal(t, i, 'true');
    else if (c === 0x66) i = literal(t, i, 'false');
    else if (c === 0x6e) i = literal(t, i, 'null');
    else throw new ScanFailure('syntax', `unexpected token at ${i}`);
    state = AFTER;
  }
}

/** What is wrong with JSON text, if anything (see the module comment). */
export interface JsonTextFault {
  kind: 'syntax' | 'depth' | 'size' | 'text' | 'value';
  message: string;
}

/**
 * The first problem of JSON text within `maxDepth` levels and `maxBytes` UTF-8 bytes (as it is), or
 * its size in UTF-8 bytes when it has none.
 */
export function scanJsonText(text: string, maxDepth: number, maxBytes: number): JsonTextFault | number {
  if (!text.isWellFormed())
    return { kind: 'text', message: 'is not well-formed Unicode (it holds a lone UTF-16 surrogate)' };
  const tooLarge = {
    kind: 'size',
    message: `is larger than the limit of ${maxBytes} bytes of JSON`,
  } as const;
  if (text.length > maxBytes) return tooLarge; // every UTF-16 unit is at least one byte
  extraBytes = 0;
  try {
    scan(text, maxDepth);
  } catch (e) {
    if (!(e instanceof ScanFailure)) throw e;
    return { kind: e.kind, message: e.kind === 'syntax' ? `is not valid JSON: ${e.message}` : e.message };
  }
  const bytes = text.length + extraBytes;
  return bytes > maxBytes ? tooLarge : bytes;
}
