import { identityKey, type IdentityRef } from '../../../schemas/detection.ts';
import type { CatalogueEntry } from '../../../schemas/catalogue.ts';
import type { CatalogueView } from './types.ts';

/** The identity catalogue as of any event time: later entries for an identity supersede earlier ones. */
export class CatalogueIndex implements CatalogueView {
  private readonly entries = new Map<string, Array<{ atMs: number; entry: CatalogueEntry }>>();

  constructor(entries: readonly CatalogueEntry[] = []) {
    for (const e of entries) this.add(e);
  }

  add(entry: CatalogueEntry): void {
    const key = identityKey(entry);
    const atMs = entry.at ? Date.parse(entry.at) : Number.NEGATIVE_INFINITY;
    const list = this.entries.get(key) ?? [];
    list.push({ atMs, entry });
    list.sort((a, b) => a.atMs - b.atMs);
    this.entries.set(key, list);
  }

  lookup(identity: Pick<IdentityRef, 'provider' | 'id'>, atMs: number): CatalogueEntry | undefined {
    const list = this.entries.get(identityKey(identity));
    if (!list) return undefined;
    let found: CatalogueEntry | undefined;
    for (const item of list) {
      if (item.atMs <= atMs) found = item.entry;
      else break;
    }
    return found;
  }

  get size(): number {
    return this.entries.size;
  }

  all(): CatalogueEntry[] {
    return [...this.entries.values()].flatMap((l) => l.map((x) => x.entry));
  }
}
