import { hash as oneShotHash } from 'node:crypto';

/**
 * The recorded fields of one event that its chain link covers (a row of the events table without its
 * hash). `link` is the row's link format (1 when absent: rows written before formats were numbered).
 */
export interface ChainContent {
  position: number;
  id: string;
  stream: string;
  revision: number;
  type: string;
  occurred_at: string;
  recorded_at: string;
  causation_id: string | null;
  correlation_id: string | null;
  schema_version: number;
  data: string;
  link?: number | undefined;
}

/** The predecessor of the first event. */
export const GENESIS = '0'.repeat(64);

/** The link format new rows are written with. */
export const CURRENT_LINK = 2;

/**
 * The hash chain link over one recorded event: altered, missing or reordered rows break it.
 *
 * - Format 2 (current): `sha256(prev "\n" header "\n" data)`, where `header` is the JSON array
 *   `[2, position, id, stream, revision, type, occurred_at, recorded_at, causation_id, correlation_id,
 *   schema_version]` and `data` is the stored JSON text itself, byte for byte. The header is JSON, which
 *   escapes every line feed inside its strings, so the first line feed after it ends it without
 *   ambiguity; the data is hashed as stored, not escaped a second time; the leading 2 binds the format.
 * - Format 1 (rows written before format 2): `sha256(prev "\n" JSON of [position, id, stream, revision,
 *   type, occurred_at, recorded_at, causation_id, correlation_id, schema_version, data])`, the data
 *   escaped as a JSON string inside the array.
 */
export function chainHash(prev: string, e: ChainContent): string {
  // one-shot hash of one string: no Hash object per event
  if (e.link === 2) return oneShotHash('sha256', `${prev}\n${linkHeader(e)}\n${e.data}`);
  if (e.link !== undefined && e.link !== 1) return unknownLink(e.link);
  return oneShotHash(
    'sha256',
    `${prev}\n${JSON.stringify([
      e.position,
      e.id,
      e.stream,
      e.revision,
      e.type,
      e.occurred_at,
      e.recorded_at,
      e.causation_id,
      e.correlation_id,
      e.schema_version,
      e.data,
    ])}`,
  );
}

function linkHeader(e: ChainContent): string {
  return JSON.stringify([
    2,
    e.position,
    e.id,
    e.stream,
    e.revision,
    e.type,
    e.occurred_at,
    e.recorded_at,
    e.causation_id,
    e.correlation_id,
    e.schema_version,
  ]);
}

/**
 * A row naming a format this version does not know links to nothing: its hash can never match (it is
 * reported as altered, as a row whose format number was edited must be).
 */
function unknownLink(link: number): string {
  return `unknown link format ${link}`;
}
