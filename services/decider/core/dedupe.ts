/**
 * Which detections an identity has already received (dedupe key: source + id, per identity).
 *
 * An identity's first INLINE_KEYS keys are held in its state object itself (SeenFields), as a
 * fingerprint and the key's entry in its store's log: most identities receive a few detections, and a
 * decision then answers from the state it already holds, without touching the table (one random
 * memory access fewer per detection; the state's own is paid anyway). Only the keys after those are
 * indexed in the table.
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
  // Sized for `capacity` entries up front: grown by push instead, a run's log would be copied some
  // 40 times, and each copy of a large array is old-generation memory that brings a full GC nearer.
  private readonly names: string[];
  private logged = 0;
  /** Slots in use (entries indexed in the table; logged-only entries are not). */
  private used = 0;
  private nextOwner = 1;

  /** `capacity`: entries expected (a private table starts small: most identities see few detections). */
  constructor(capacity = 4) {
    let cap = 8;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Int32Array(cap * 3);
    this.names = new Array<string>(2 * Math.max(4, capacity));
  }

  /** A number for a new identity's set in this table (its sets are told apart by owner). */
  newOwner(): number {
    return this.nextOwner++;
  }

  /** Keys indexed in the table, over all its sets. */
  get size(): number {
    return this.used;
  }

  /** Entries in the log: keys indexed in the table and keys held inline by a state. */
  get entries(): number {
    return this.logged;
  }

  /** Appends a key to the log only (a state holds its entry number); returns that number. */
  log(source: string, id: string): number {
    const entry = this.logged++;
    const { names } = this;
    if (2 * entry < names.length) {
      names[2 * entry] = id;
      names[2 * entry + 1] = source;
    } else names.push(id, source);
    return entry;
  }

  /** Whether log entry `entry` is this key. */
  isEntry(entry: number, source: string, id: string): boolean {
    return this.names[2 * entry] === id && this.names[2 * entry + 1] === source;
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
    keys[3 * i + 2] = this.log(source, id);
    this.used++;
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
  /** Entries in the log so far. */
  readonly entries: number;
  /** Appends a key to the log only, for a state to hold inline; its entry number, or -1 to hold nothing. */
  log(source: string, id: string): number;
  isEntry(entry: number, source: string, id: string): boolean;
}

/**
 * For inputs known to hold no re-delivery (a history passed through withoutRepeatedDetections):
 * nothing was seen before, and nothing needs remembering.
 */
export const NO_REPEATS: SeenStore = Object.freeze({
  newOwner: () => 0,
  has: () => false,
  add: () => true,
  entries: 0,
  log: () => -1,
  isEntry: () => false,
});

/** How many of an identity's keys its state holds inline. */
export const INLINE_KEYS = 8;
// An inline key is one small integer (a V8 Smi, stored in the object itself): a 7-bit fingerprint
// of the key's hash above its 23-bit log entry. Entries past 2^23 in one store are indexed instead.
const ENTRY_BITS = 23;
const ENTRY_MASK = (1 << ENTRY_BITS) - 1;

/**
 * The dedupe part of an identity's state: its store and owner number there, and its first keys
 * inline (seen0..seen7, `seenInline` of them used); `seenIndexed` once any key went to the table.
 */
export interface SeenFields {
  seen: SeenStore;
  seenOwner: number;
  seenInline: number;
  seenIndexed: boolean;
  seen0: number;
  seen1: number;
  seen2: number;
  seen3: number;
  seen4: number;
  seen5: number;
  seen6: number;
  seen7: number;
}

/** Whether the identity already received this detection (source + id). */
export function hasSeen(s: SeenFields, source: string, id: string): boolean {
  const n = s.seenInline;
  if (n > 0) {
    const fp = fingerprint(s.seenOwner, id);
    // Unrolled: the slots are fields, so that they live in the state object's own memory.
    if (isInline(s, s.seen0, fp, source, id)) return true;
    if (n > 1 && isInline(s, s.seen1, fp, source, id)) return true;
    if (n > 2 && isInline(s, s.seen2, fp, source, id)) return true;
    if (n > 3 && isInline(s, s.seen3, fp, source, id)) return true;
    if (n > 4 && isInline(s, s.seen4, fp, source, id)) return true;
    if (n > 5 && isInline(s, s.seen5, fp, source, id)) return true;
    if (n > 6 && isInline(s, s.seen6, fp, source, id)) return true;
    if (n > 7 && isInline(s, s.seen7, fp, source, id)) return true;
  }
  return s.seenIndexed && s.seen.has(s.seenOwner, source, id);
}

/** The 7 high bits of the key's hash: an inline slot's tag, checked before its log entry is read. */
function fingerprint(owner: number, id: string): number {
  return slotHash(owner, id) >>> 25;
}

function isInline(s: SeenFields, slot: number, fp: number, source: string, id: string): boolean {
  return slot >>> ENTRY_BITS === fp && s.seen.isEntry(slot & ENTRY_MASK, source, id);
}

/**
 * Remembers a detection the identity had not seen (the caller knows: decide emits DetectionReceived
 * only for those). Inline while a slot is free, in the table after that.
 */
export function markSeen(s: SeenFields, source: string, id: string): void {
  const n = s.seenInline;
  if (n < INLINE_KEYS && s.seen.entries <= ENTRY_MASK) {
    const entry = s.seen.log(source, id);
    if (entry < 0) return; // a store that remembers nothing
    const slot = (fingerprint(s.seenOwner, id) << ENTRY_BITS) | entry;
    switch (n) {
      case 0:
        s.seen0 = slot;
        break;
      case 1:
        s.seen1 = slot;
        break;
      case 2:
        s.seen2 = slot;
        break;
      case 3:
        s.seen3 = slot;
        break;
      case 4:
        s.seen4 = slot;
        break;
      case 5:
        s.seen5 = slot;
        break;
      case 6:
        s.seen6 = slot;
        break;
      default:
        s.seen7 = slot;
    }
    s.seenInline = n + 1;
    return;
  }
  s.seen.add(s.seenOwner, source, id);
  s.seenIndexed = true;
}

// A decision asks `hasSeen` and its fold then calls `markSeen` with the same key: the hash is
// remembered for one call. Module state, not table state: a pure function's memo, invisible in any identity's state.
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
