/**
 * Which detections an identity has already received (dedupe key: source + id, per identity).
 *
 * The sets of many identities can share one table (an arena): replay, tuning and the benchmark keep
 * every identity of a run in memory, and one open-addressing table over all of them is about three
 * times faster than a JS Map per identity (no per-identity rehashing, no chained buckets; measured
 * in the issue note). The live engine gives each identity a private table, so memory follows its
 * bounded state cache. Either way a set answers exactly; hashes only pick the slot.
 */
export class DedupeTable implements SeenStore {
  // Slot i: keys[3i] = hash (0: empty), keys[3i+1] = owner, keys[3i+2] = entry. Entry e: names[2e] = id,
  // names[2e+1] = source, appended in arrival order. Names are read only when hash and owner match, and
  // written sequentially; they take 2 references an entry (not 2 a slot, at most half of slots used),
  // and growing rehashes the slots only. (Speed measured the same as names kept per slot.)
  private keys: Int32Array;
  private readonly names: string[] = [];
  private used = 0;
  private nextOwner = 1;

  /** `capacity`: entries expected (a private table starts small: most identities see few detections). */
  constructor(capacity = 4) {
    let cap = 8;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Int32Array(cap * 3);
  }

  /** A number for a new identity's set in this table (its sets are told apart by owner). */
  newOwner(): number {
    return this.nextOwner++;
  }

  /** Entries over all sets in the table. */
  get size(): number {
    return this.used;
  }

  has(owner: number, source: string, id: string): boolean {
    return this.keys[3 * this.slotOf(owner, source, id)] !== 0;
  }

  /** Adds the key; false when it was already there. */
  add(owner: number, source: string, id: string): boolean {
    if ((this.used + 1) * 6 > this.keys.length) this.grow(); // at most half the slots used
    const i = this.slotOf(owner, source, id);
    const { keys } = this;
    if (keys[3 * i] !== 0) return false;
    keys[3 * i] = slotHash(owner, id);
    keys[3 * i + 1] = owner;
    keys[3 * i + 2] = this.used++;
    this.names.push(id, source);
    return true;
  }

  /** The slot holding the key, or the empty slot where it would go (linear probing). */
  private slotOf(owner: number, source: string, id: string): number {
    const hv = slotHash(owner, id);
    const { keys, names } = this;
    const mask = keys.length / 3 - 1;
    for (let i = hv & mask; ; i = (i + 1) & mask) {
      const h = keys[3 * i]!;
      if (h === 0) return i;
      if (h === hv && keys[3 * i + 1] === owner) {
        const e = keys[3 * i + 2]!;
        if (names[2 * e] === id && names[2 * e + 1] === source) return i;
      }
    }
  }

  private grow(): void {
    const old = this.keys;
    const slots = (old.length / 3) * 2;
    const mask = slots - 1;
    const keys = new Int32Array(slots * 3);
    for (let j = 0; j < old.length; j += 3) {
      const hv = old[j]!;
      if (hv === 0) continue;
      let i = hv & mask;
      while (keys[3 * i] !== 0) i = (i + 1) & mask;
      keys[3 * i] = hv;
      keys[3 * i + 1] = old[j + 1]!;
      keys[3 * i + 2] = old[j + 2]!;
    }
    this.keys = keys;
  }
}

/**
 * Where identities' received detections are kept. An identity state holds its store and its owner
 * number in it directly, not a per-identity set object: one object fewer per identity and one
 * indirection fewer per detection.
 */
export interface SeenStore {
  newOwner(): number;
  has(owner: number, source: string, id: string): boolean;
  /** Adds the key; false when it was already there. */
  add(owner: number, source: string, id: string): boolean;
}

/**
 * For inputs known to hold no re-delivery (a history passed through withoutRepeatedDetections):
 * nothing was seen before, and nothing needs remembering.
 */
export const NO_REPEATS: SeenStore = Object.freeze({
  newOwner: () => 0,
  has: () => false,
  add: () => true,
});

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
