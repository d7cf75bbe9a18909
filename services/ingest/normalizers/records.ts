/**
 * Splits an input text into records: one JSON value, a JSON array of records, or NDJSON (one record a
 * line). In NDJSON a line that is not JSON but is a bare compact JWT is a record too (a SET); any other
 * broken line is an error with its index and the remaining lines still flow.
 *
 * `index` is the 0-based position of the record in the input: the element index for an array, the
 * position among non-blank lines for NDJSON (so an error's index and a record's index never collide).
 */
import { rememberJsonText } from '../../../schemas/json-text.ts';
import { COMPACT_JWT } from './set.ts';

export interface ParsedRecords {
  records: unknown[];
  errors: { index: number; reason: string }[];
}

export interface IndexedRecords {
  records: { index: number; record: unknown }[];
  errors: { index: number; reason: string }[];
}

export function parseRecordsIndexed(text: string): IndexedRecords {
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') return { records: [], errors: [] };
  try {
    const whole: unknown = JSON.parse(trimmed);
    if (!Array.isArray(whole)) rememberJsonText(whole, trimmed); // the raw record's text, as it came
    const list = Array.isArray(whole) ? whole : [whole];
    return { records: list.map((record, index) => ({ record, index })), errors: [] };
  } catch {
    // Not one JSON value: NDJSON.
  }
  const records: IndexedRecords['records'] = [];
  const errors: IndexedRecords['errors'] = [];
  let index = 0;
  for (const [lineNo, rawLine] of trimmed.split(/\r?\n/).entries()) {
    const line = rawLine.trim();
    if (line === '') continue;
    try {
      records.push({ index, record: JSON.parse(line) });
    } catch (e) {
      if (COMPACT_JWT.test(line)) records.push({ index, record: line });
      else errors.push({ index, reason: `line ${lineNo + 1}: invalid JSON: ${(e as Error).message}` });
    }
    index++;
  }
  return { records, errors };
}

export function parseRecords(text: string): ParsedRecords {
  const { records, errors } = parseRecordsIndexed(text);
  return { records: records.map((r) => r.record), errors };
}
