import { canonicalTimeMs } from '../../../schemas/detection.ts';

/**
 * Event-time parsing for the hot path. Every decision parses the same few timestamps several times
 * (decide reads the decision time and the detection time, evolve reads both again), and nearly all
 * of them are in the canonical `toISOString()` form `YYYY-MM-DDTHH:mm:ss.sssZ`. That form is read by
 * hand (canonicalTimeMs); anything else (offsets, no fraction, a day the month lacks) goes to
 * Date.parse. The result is always exactly Date.parse's: a pure function, memoised on the last two
 * strings seen.
 */

let lastA = '';
let lastAMs = Number.NaN;
let lastB = '';
let lastBMs = Number.NaN;

/** Milliseconds since the epoch of an ISO 8601 timestamp, exactly as Date.parse would return them. */
export function parseTime(text: string): number {
  if (text === lastA) return lastAMs;
  if (text === lastB) return lastBMs;
  const canonical = canonicalTimeMs(text);
  const ms = Number.isNaN(canonical) ? Date.parse(text) : canonical;
  lastB = lastA;
  lastBMs = lastAMs;
  lastA = text;
  lastAMs = ms;
  return ms;
}
