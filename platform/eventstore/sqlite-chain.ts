import type Database from 'better-sqlite3';
import { CURRENT_LINK, chainHash, GENESIS } from './chain-hash.ts';
import { type EventRow, verifyChainDb } from './chain-verify.ts';
import type { ChainAnchor, ChainVerdict } from './port.ts';

/**
 * Tamper evidence for the embedded event store. Every row carries the link
 * `hash = sha256(previous hash, "\n", header of the fixed fields, "\n", data as stored)`, starting
 * from 64 zeros, in the link format its `link` column names (chain-hash.ts; rows written by earlier
 * versions keep format 1). A DetectionReceived's raw record lives in `raw_records`, named by its
 * SHA-256 in the chained event (raw-records.ts). `verifySqliteChain` walks every row and reports every altered, missing or
 * reordered one, and, given anchors (heads recorded outside the database), tail truncation and
 * re-chaining (chain-verify.ts). While serving, the store also checks itself (chain-guard.ts).
 */

export { CURRENT_LINK, chainHash, type EventRow, GENESIS };

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
