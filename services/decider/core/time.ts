/**
 * Event-time parsing for the hot path. Every decision parses the same few timestamps several times
 * (decide reads the decision time and the detection time, evolve reads both again), and nearly all
 * of them are in the canonical `toISOString()` form `YYYY-MM-DDTHH:mm:ss.sssZ`. That form is parsed
 * by hand; anything else (offsets, no fraction) goes to Date.parse. The result is always exactly
 * Date.parse's: a pure function, memoised on the last two strings seen.
 */

let lastA = '';
let lastAMs = Number.NaN;
let lastB = '';
let lastBMs = Number.NaN;

/** Milliseconds since the epoch of an ISO 8601 timestamp, exactly as Date.parse would return them. */
export function parseTime(text: string): number {
  if (text === lastA) return lastAMs;
  if (text === lastB) return lastBMs;
  const ms = parseCanonical(text);
  lastB = lastA;
  lastBMs = lastAMs;
  lastA = text;
  lastAMs = ms;
  return ms;
}

const ZERO = 48;

function digits(s: string, from: number, count: number): number {
  let v = 0;
  for (let i = from; i < from + count; i++) {
    const c = s.charCodeAt(i) - ZERO;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function parseCanonical(s: string): number {
  if (
    s.length !== 24 ||
    s.charCodeAt(4) !== 45 || // -
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 84 || // T
    s.charCodeAt(13) !== 58 || // :
    s.charCodeAt(16) !== 58 ||
    s.charCodeAt(19) !== 46 || // .
    s.charCodeAt(23) !== 90 // Z
  ) {
    return Date.parse(s);
  }
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  const h = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  const sec = digits(s, 17, 2);
  const frac = digits(s, 20, 3);
  if (
    y < 0 ||
    mo < 1 ||
    mo > 12 ||
    d < 1 ||
    d > 31 ||
    h < 0 ||
    h > 23 ||
    mi < 0 ||
    mi > 59 ||
    sec < 0 ||
    sec > 59 ||
    frac < 0
  ) {
    return Date.parse(s);
  }
  return (((daysFromCivil(y, mo) + d - 1) * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + frac;
}

/** Days from 1970-01-01 to the first of month `m` (1-12) of year `y` (proleptic Gregorian). */
function daysFromCivil(y: number, m: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5);
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
