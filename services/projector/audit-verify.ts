import {
  CHAIN_PROBLEMS,
  type ChainAnchor,
  type ChainVerdict,
  verifyChainDb,
} from '../../platform/eventstore/chain-verify.ts';
import type { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';

export type {
  ChainAnchor,
  ChainBreak,
  ChainProblem,
  ChainVerdict,
} from '../../platform/eventstore/chain-verify.ts';
export { CHAIN_PROBLEMS };

/**
 * Tamper evidence for the embedded event store: walks every row, recomputes every link of the hash
 * chain and reports every altered, missing or reordered event, and, given anchors (heads recorded
 * outside the database), tail truncation and re-chaining. The walk itself lives with the store
 * (platform/eventstore/chain-verify.ts) because the store also runs it on its own while it serves.
 */
export function verifyChain(
  store: SqliteEventStore,
  opts: { anchors?: readonly ChainAnchor[] } = {},
): ChainVerdict {
  return verifyChainDb(store.database, opts);
}
