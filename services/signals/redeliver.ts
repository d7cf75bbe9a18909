/**
 * Sending refused SETs again, once the receiver side is fixed (`tourniquet signals redeliver`). Each
 * line of the dead-letter file holds the signed SET as it was first sent; it goes again, unchanged
 * (same `jti`), to the receiver's URL and credentials as configured now.
 *
 * The file is moved aside first (one rename), so that a transmitter still running appends new
 * letters to a fresh file and none is lost; what is still not delivered is appended back, then the
 * moved file is removed. A run that stops half-way leaves the moved file in place: give it to
 * `--file` to finish.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { TourniquetError } from '../../platform/errors.ts';
import { appendDeadLetter, pushSet, type SignalDeadLetter, type SignalReceiver } from './transmitter.ts';

export interface RedeliverReport {
  file: string;
  dryRun: boolean;
  read: number;
  /** Letters with a receiver configured now: sent (or, dry run, to be sent). */
  toSend: number;
  delivered: number;
  /** Refused again for good: kept, with the new answer. */
  refused: number;
  /** Not delivered now (down, timeout, 5xx, 401/403…): kept as they were. */
  failed: number;
  /** Letters for a receiver no longer configured, or left out by --receiver: kept. */
  skipped: number;
  /** Lines that are not a dead letter: kept as they were. */
  malformed: number;
}

function isLetter(v: unknown): v is SignalDeadLetter {
  const l = v as Partial<SignalDeadLetter> | null;
  return typeof l?.receiver === 'string' && typeof l.set === 'string' && typeof l.jti === 'string';
}

export async function redeliverDeadLetters(opts: {
  /** The dead-letter file (signals-dead-letters.jsonl), or a moved-aside one from a stopped run. */
  path: string;
  receivers: readonly SignalReceiver[];
  /** Only letters for these receivers. */
  only?: readonly string[];
  dryRun?: boolean;
  /** Where letters still not delivered go (default: `path`). */
  keepPath?: string;
  now?: () => Date;
}): Promise<RedeliverReport> {
  const keepPath = opts.keepPath ?? opts.path;
  const report: RedeliverReport = {
    file: opts.path,
    dryRun: Boolean(opts.dryRun),
    read: 0,
    toSend: 0,
    delivered: 0,
    refused: 0,
    failed: 0,
    skipped: 0,
    malformed: 0,
  };
  if (!existsSync(opts.path)) return report;
  // The live file is moved aside first; a moved-aside file from a stopped run is worked on in place.
  const working =
    opts.dryRun || opts.path !== keepPath ? opts.path : `${opts.path}.redelivering-${Date.now()}`;
  if (working !== opts.path) renameSync(opts.path, working);
  const keep = (line: string) => {
    if (!opts.dryRun) appendFileSync(keepPath, `${line}\n`); // one write per line, as appendDeadLetter
  };
  const byName = new Map(opts.receivers.map((r) => [r.name, r]));
  for (const line of readFileSync(working, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    report.read += 1;
    let letter: unknown;
    try {
      letter = JSON.parse(line);
    } catch {
      letter = undefined; // counted and kept below
    }
    if (!isLetter(letter)) {
      report.malformed += 1;
      keep(line);
      continue;
    }
    const receiver = byName.get(letter.receiver);
    if (!receiver || (opts.only && !opts.only.includes(letter.receiver))) {
      report.skipped += 1;
      keep(line);
      continue;
    }
    report.toSend += 1;
    if (opts.dryRun) continue;
    try {
      // never aborted from here: the receiver's own timeout makes a slow answer "not delivered now"
      const refusal = await pushSet(receiver, letter.set, new AbortController().signal);
      if (!refusal) {
        report.delivered += 1;
        continue;
      }
      report.refused += 1;
      appendDeadLetter(keepPath, {
        ...letter,
        at: (opts.now ?? (() => new Date()))().toISOString(),
        status: refusal.status,
        answer: refusal.body.slice(0, 2000),
      });
    } catch (err) {
      if (!(err instanceof TourniquetError) || !err.retriable) throw err;
      report.failed += 1;
      keep(line);
    }
  }
  if (!opts.dryRun) rmSync(working);
  return report;
}
