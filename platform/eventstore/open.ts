/**
 * Opens the event store a `serve` process is configured for:
 * - `sqlite`: one file (WAL) that several processes on one host may share; concurrent appends are
 *   grouped into one transaction (CoalescingEventStore) unless `coalesceAppends` is off;
 * - `kurrentdb`: a KurrentDB / EventStoreDB server or cluster by connection string (the client package
 *   is loaded on demand by KurrentDbEventStore.connect).
 */
import type { Logger } from 'pino';
import { TourniquetError } from '../errors.ts';
import type { ChainGuard } from './chain-guard.ts';
import { CoalescingEventStore } from './coalescing.ts';
import { logHealthChanges } from './health.ts';
import { KurrentDbEventStore } from './kurrentdb.ts';
import type { EventStore } from './port.ts';
import { type Durability, SqliteEventStore, type SqliteEventStoreOptions } from './sqlite.ts';

export const EVENT_STORE_KINDS = ['sqlite', 'kurrentdb'] as const;
type EventStoreKind = (typeof EVENT_STORE_KINDS)[number];

export type EventStoreConfig =
  | {
      kind: 'sqlite';
      /** The SQLite file. */
      path: string;
      durability?: Durability;
      /** Group concurrent appends into one transaction (default true). */
      coalesceAppends?: boolean;
      /** Poll interval for appends made by other processes (ms). */
      pollMs?: number;
      /** The running chain check (see SqliteEventStoreOptions.integrity); on unless false. */
      integrity?: SqliteEventStoreOptions['integrity'] | false;
    }
  | {
      kind: 'kurrentdb';
      /** e.g. `kurrentdb://host:2113?tls=false`, `kurrentdb+discover://user:pass@a:2113,b:2113,c:2113`. */
      connectionString: string;
      /** Bytes per batch-append request (client default). */
      batchAppendSize?: number;
    };

export interface OpenedEventStore {
  store: EventStore;
  kind: EventStoreKind;
  /** Where it is, for logs: the file path or the connection string without credentials. */
  where: string;
  /** SQLite: the store's running chain check (KurrentDB has no hash chain). */
  integrity?: ChainGuard;
}

/** The connection string with any user:password removed, for logs. */
function redactConnectionString(s: string): string {
  return s.replace(/^([a-z+]+:\/\/)[^@/]*@/i, '$1***@');
}

export async function openEventStore(
  config: EventStoreConfig,
  opts: { log?: Logger } = {},
): Promise<OpenedEventStore> {
  switch (config.kind) {
    case 'sqlite': {
      const sqlite = new SqliteEventStore({
        path: config.path,
        ...(config.durability ? { durability: config.durability } : {}),
        ...(config.pollMs !== undefined ? { pollMs: config.pollMs } : {}),
        ...(config.integrity !== false
          ? { integrity: { ...(opts.log ? { log: opts.log } : {}), ...(config.integrity ?? {}) } }
          : {}),
      });
      if (opts.log) logHealthChanges(sqlite, opts.log, config.path);
      const store = (config.coalesceAppends ?? true) ? new CoalescingEventStore(sqlite) : sqlite;
      return {
        store,
        kind: 'sqlite',
        where: config.path,
        ...(sqlite.integrity ? { integrity: sqlite.integrity } : {}),
      };
    }
    case 'kurrentdb': {
      if (!config.connectionString) {
        throw new TourniquetError(
          'CONFIG_INVALID',
          'the KurrentDB event store needs a connection string (store.kurrentdb.connectionString or TOURNIQUET_KURRENTDB_CONNECTION_STRING)',
          { status: 500 },
        );
      }
      const store = await KurrentDbEventStore.connect({
        connectionString: config.connectionString,
        ...(config.batchAppendSize ? { batchAppendSize: config.batchAppendSize } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
      return { store, kind: 'kurrentdb', where: redactConnectionString(config.connectionString) };
    }
  }
}
