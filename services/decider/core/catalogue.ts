import type { CatalogueEntry } from '../../../schemas/catalogue.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import type { CatalogueView } from './types.ts';

/** An identity's entries in effect order; kept as the same array as entries are added. */
export type Timeline = Array<{ atMs: number; entry: CatalogueEntry }>;

/** The entry in effect at `atMs` on a timeline (the latest one not after it). */
export function entryAt(list: Timeline, atMs: number): CatalogueEntry | undefined {
  for (let i = list.length - 1; i >= 0; i--) {
    const item = list[i]!;
    if (item.atMs <= atMs) return item.entry;
  }
  return undefined;
}

/**
 * The identity catalogue as of any event time: later entries for an identity supersede earlier ones
 * (an entry without `at` applies from the beginning; of two entries effective at the same time,
 * the one added last wins). Indexed by provider, then id, so a lookup builds no key string.
 */
export class CatalogueIndex implements CatalogueView {
  private readonly byProvider = new Map<string, Map<string, Timeline>>();
  /** provider → alias id → the canonical identity's entry (the latest entry naming the alias wins). */
  private readonly aliases = new Map<string, Map<string, CatalogueEntry>>();
  private count = 0;

  constructor(entries: readonly CatalogueEntry[] = []) {
    for (const e of entries) this.add(e);
  }

  add(entry: CatalogueEntry): void {
    let ids = this.byProvider.get(entry.provider);
    if (!ids) {
      ids = new Map();
      this.byProvider.set(entry.provider, ids);
    }
    let list = ids.get(entry.id);
    if (!list) {
      list = [];
      ids.set(entry.id, list);
      this.count += 1;
    }
    list.push({ atMs: entry.at ? Date.parse(entry.at) : Number.NEGATIVE_INFINITY, entry });
    list.sort((a, b) => a.atMs - b.atMs); // stable: same time, added last comes last
    for (const alias of entry.aliases ?? []) {
      if (alias.provider === entry.provider && alias.id === entry.id) continue;
      let byId = this.aliases.get(alias.provider);
      if (!byId) {
        byId = new Map();
        this.aliases.set(alias.provider, byId);
      }
      byId.set(alias.id, entry);
    }
  }

  /** The canonical identity an alias names, or undefined when it is no alias (or the catalogue has none). */
  canonical(identity: Pick<IdentityRef, 'provider' | 'id'>): CatalogueEntry | undefined {
    if (this.aliases.size === 0) return undefined;
    return this.aliases.get(identity.provider)?.get(identity.id);
  }

  lookup(identity: Pick<IdentityRef, 'provider' | 'id'>, atMs: number): CatalogueEntry | undefined {
    const list = this.byProvider.get(identity.provider)?.get(identity.id);
    return list ? entryAt(list, atMs) : undefined;
  }

  /**
   * The identity's timeline, or undefined when it has no entry yet. Later entries for it are added
   * to this same array, so a caller may keep it (and read it with entryAt) instead of looking the
   * identity up again in maps of every identity.
   */
  timeline(identity: Pick<IdentityRef, 'provider' | 'id'>): Timeline | undefined {
    return this.byProvider.get(identity.provider)?.get(identity.id);
  }

  get size(): number {
    return this.count;
  }

  all(): CatalogueEntry[] {
    const out: CatalogueEntry[] = [];
    for (const ids of this.byProvider.values())
      for (const list of ids.values()) for (const x of list) out.push(x.entry);
    return out;
  }
}
