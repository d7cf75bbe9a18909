import { TourniquetError } from '../errors.ts';

/**
 * Storage faults told truthfully. A full disk, a read-only file system, a locked or corrupt database
 * or an I/O error is not a bug in the request: callers get a retriable STORE_UNAVAILABLE (HTTP 503
 * with Retry-After), readiness turns false, and it turns true again only once a write succeeds.
 */

/** SQLite result codes (primary part) that mean the storage, not the request, failed. */
const STORAGE_CODES: Record<string, string> = {
  SQLITE_FULL: 'disk full',
  SQLITE_IOERR: 'I/O error',
  SQLITE_READONLY: 'read-only database or file system',
  SQLITE_BUSY: 'database locked by another connection',
  SQLITE_LOCKED: 'database table locked',
  SQLITE_CORRUPT: 'database file corrupt',
  SQLITE_NOTADB: 'not a database file',
  SQLITE_CANTOPEN: 'database file cannot be opened',
  SQLITE_PROTOCOL: 'database lock protocol error',
  SQLITE_NOLFS: 'large files not supported',
};

/** Errno codes of the file system with the same meaning. */
const ERRNO_CODES: Record<string, string> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EIO: 'I/O error',
  EACCES: 'permission denied',
};

/** Seconds a client should wait before retrying after a storage fault. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/** The storage fault behind `err` (its code and what it means), or undefined for any other error. */
export function storageFault(err: unknown): { code: string; meaning: string } | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  const primary = code.startsWith('SQLITE_') ? code.split('_').slice(0, 2).join('_') : code;
  const meaning = STORAGE_CODES[primary] ?? ERRNO_CODES[code];
  return meaning ? { code, meaning } : undefined;
}

export function storeUnavailable(fault: { code: string; meaning: string }, cause: unknown): TourniquetError {
  return new TourniquetError(
    'STORE_UNAVAILABLE',
    `event store unavailable: ${fault.meaning} (${fault.code}); nothing of this request was written, retry later`,
    {
      retriable: true,
      status: 503,
      details: { cause: fault.code, retryAfterSeconds: STORE_RETRY_AFTER_SECONDS },
      cause,
    },
  );
}

export interface StoreHealth {
  /** False from a storage fault until the next successful write. */
  writable: boolean;
  /** Storage faults since start, by code (e.g. SQLITE_FULL). */
  faults: Readonly<Record<string, number>>;
  lastFault?: { code: string; meaning: string; at: string };
}

/** Tracks a store's health; `onChange` hears each transition (for a log line). */
export class StoreHealthTracker {
  private state: StoreHealth = { writable: true, faults: {} };
  private readonly listeners: Array<(h: StoreHealth, cause?: unknown) => void> = [];
  private readonly now: () => Date;

  constructor(now: () => Date = () => new Date()) {
    this.now = now;
  }

  get health(): StoreHealth {
    return this.state;
  }

  onChange(listener: (h: StoreHealth, cause?: unknown) => void): void {
    this.listeners.push(listener);
  }

  fault(fault: { code: string; meaning: string }, cause: unknown): void {
    const was = this.state.writable;
    this.state = {
      writable: false,
      faults: { ...this.state.faults, [fault.code]: (this.state.faults[fault.code] ?? 0) + 1 },
      lastFault: { ...fault, at: this.now().toISOString() },
    };
    if (was) for (const l of this.listeners) l(this.state, cause);
  }

  writeSucceeded(): void {
    if (this.state.writable) return;
    this.state = { ...this.state, writable: true };
    for (const l of this.listeners) l(this.state);
  }
}

/** The log lines of a store's health transitions: one when writes start failing, one when they recover. */
export function logHealthChanges(
  store: { onHealthChange(l: (h: StoreHealth, cause?: unknown) => void): void },
  log: { error(o: object, msg: string): void; info(o: object, msg: string): void },
  where: string,
): void {
  store.onHealthChange((h, cause) => {
    if (h.writable) log.info({ store: where }, 'event store writable again: a write succeeded; ready');
    else
      log.error(
        { store: where, fault: h.lastFault, err: cause },
        `event store unavailable: ${h.lastFault?.meaning}; writes answer 503 STORE_UNAVAILABLE and /readyz is false until a write succeeds`,
      );
  });
}
