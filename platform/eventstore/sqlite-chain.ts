import type Database from 'better-sqlite3';
import { chainHash, GENESIS } from './chain-hash.ts';
import { type EventRow, verifyChainDb } from './chain-verify.ts';
import type { ChainAnchor, ChainVerdict } from './port.ts';

/**
 * Tamper evidence for the embedded event store. Every row carries
 * `hash = sha256(previous hash, "\n", JSON of [position, id, stream, revision, type, occurred_at,
 * recorded_at, causation_id, correlation_id, schema_version, data])`, starting from 64 zeros
 * (chain-hash.ts). `verifySqliteChain` walks every row and reports every altered, missing or
 * reordered one, and, given anchors (heads recorded outside the database), tail truncation and
 * re-chaining (chain-verify.ts). While serving, the store also checks itself (chain-guard.ts).
 */

export { chainHash, type EventRow, GENESIS };

/** What the walk reads: the store's database (a SqliteEventStore). */
export interface ChainSource {
  readonly database: Database.Database;
}

export function verifySqliteChain(
  store: ChainSource,
  opts: { anchors?: readonly ChainAnchor[] } = {},
): ChainVerdict {
  return verifyChainDb(store.database, opts);
}
