/**
 * Which detections an identity has already received (dedupe key: source + id, per identity).
 *
 * The sets of many identities can share one table (an arena): replay, tuning and the benchmark keep
 * every identity of a run in memory, and one open-addressing table over all of them is about three
 * times faster than a JS Map per identity (no per-identity rehashing, no chained buckets; measured
 * in the issue note). The live engine gives each identity a private table, so memory follows its
 * bounded state cache. Either way a set answers exactly; hashes only pick the slot.
 */
export class DedupeTable {
  // Slot i: keys[2i] = hash, keys[2i+1] = owner; names[2i] = id, names[2i+1] = source. Interleaved,
  // so a probe touches one cache line per array rather than one per field.
  private keys: Int32Array;
  private names: string[];
  private used = 0;
  private nextOwner = 1;

  /** `capacity`: entries expected (a private table starts small: most identities see few detections). */
  constructor(capacity = 4) {
    let cap = 8;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Int32Array(cap * 2);
    this.names = new Array<string>(cap * 2).fill('');
  }

  /** A new, empty set in this table. */
  newSet(): SeenSet {
    return new SeenSet(this, this.nextOwner++);
  }

  /** Entries over all sets in the table. */
  get size(): number {
    return this.used;
  }

  has(owner: number, source: string, id: string): boolean {
    const hv = slotHash(owner, id);
    const { keys, names } = this;
    const mask = (keys.length >> 1) - 1;
    for (let i = hv & mask; ; i = (i + 1) & mask) {
      const h = keys[2 * i]!;
      if (h === 0) return false;
      if (h === hv && keys[2 * i + 1] === owner && names[2 * i] === id && names[2 * i + 1] === source)
        return true;
    }
  }

  /** Adds the key; false when it was already there. */
  add(owner: number, source: string, id: string): boolean {
    if ((this.used + 1) * 4 > this.keys.length) this.grow();
    const hv = slotHash(owner, id);
    const { keys, names } = this;
    const mask = (keys.length >> 1) - 1;
    for (let i = hv & mask; ; i = (i + 1) & mask) {
      const h = keys[2 * i]!;
      if (h === 0) {
        keys[2 * i] = hv;
        keys[2 * i + 1] = owner;
        names[2 * i] = id;
        names[2 * i + 1] = source;
        this.used++;
        return true;
      }
      if (h === hv && keys[2 * i + 1] === owner && names[2 * i] === id && names[2 * i + 1] === source)
        return false;
    }
  }

  private grow(): void {
    const { keys, names } = this;
    const cap = keys.length; // slots double: 2 * (keys.length / 2)
    const mask = cap - 1;
    this.keys = new Int32Array(cap * 2);
    this.names = new Array<string>(cap * 2).fill('');
    for (let j = 0; j < keys.length; j += 2) {
      const hv = keys[j]!;
      if (hv === 0) continue;
      let i = hv & mask;
      while (this.keys[2 * i] !== 0) i = (i + 1) & mask;
      this.keys[2 * i] = hv;
      this.keys[2 * i + 1] = keys[j + 1]!;
      this.names[2 * i] = names[j]!;
      this.names[2 * i + 1] = names[j + 1]!;
    }
  }
}

/** What the decider asks of an identity's received detections. */
export interface SeenView {
  has(source: string, id: string): boolean;
  add(source: string, id: string): void;
  readonly size: number;
}

/**
 * For inputs known to hold no re-delivery (a history passed through withoutRepeatedDetections):
 * nothing was seen before, and nothing needs remembering.
 */
export const NO_REPEATS: SeenView = Object.freeze({
  has: () => false,
  add: () => {},
  size: 0,
});

/** One identity's received detections: a view on a DedupeTable (its own, or a shared one). */
export class SeenSet implements SeenView {
  private readonly table: DedupeTable;
  private readonly owner: number;
  private count = 0;

  constructor(table: DedupeTable = new DedupeTable(), owner = 1) {
    this.table = table;
    this.owner = owner;
  }

  has(source: string, id: string): boolean {
    return this.table.has(this.owner, source, id);
  }

  add(source: string, id: string): void {
    if (this.table.add(this.owner, source, id)) this.count++;
  }

  get size(): number {
    return this.count;
  }
}

// A decision asks `has` and its fold then calls `add` with the same key: the hash is remembered for
// one call. Module state, not table state: a pure function's memo, invisible in any identity's state.
let memoOwner = 0;
let memoId = '';
let memoHash = 0;

/**
 * FNV-1a over the id, mixed with the owner; never 0 (0 marks an empty slot). The source is compared,
 * not hashed: an id is nearly always unique on its own, and hashing it would cost more than it saves.
 */
function slotHash(owner: number, id: string): number {
  if (owner === memoOwner && id === memoId) return memoHash;
  let h = 0x811c9dc5 ^ Math.imul(owner, 0x9e3779b1);
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 15;
  if (h === 0) h = 1;
  memoOwner = owner;
  memoId = id;
  memoHash = h;
  return h;
}
