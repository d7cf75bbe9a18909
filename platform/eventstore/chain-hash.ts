import { hash as oneShotHash } from 'node:crypto';

/** The recorded fields of one event that its chain link covers (a row of the events table without its hash). */
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
}

/** The predecessor of the first event. */
export const GENESIS = '0'.repeat(64);

/** The hash chain link over one recorded event: altered, missing or reordered rows break it. */
export function chainHash(prev: string, e: ChainContent): string {
  // one-shot hash of one string: the same bytes as hashing prev, "\n" and the JSON in three updates,
  // without a Hash object per event
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
