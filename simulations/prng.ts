/**
 * Deterministic pseudo-random numbers for replay assumptions and scenario generators. Nothing in
 * simulations/ may use Math.random: the same seed must always give the same history and report.
 */

/** 32-bit FNV-1a hash of a string, mixed with a seed: a stable key for a PRNG stream. */
function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix32) so nearby keys give unrelated streams
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: a small, fast, well-distributed 32-bit PRNG. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One uniform draw keyed by a string (e.g. an action id): the same key and seed always draw the same. */
export function keyedUniform(key: string, seed = 0): number {
  return mulberry32(hash32(key, seed))();
}

/** A seeded random stream with the helpers scenario generators need. */
export class Rng {
  private readonly next: () => number;
  private readonly label: string;

  constructor(seed: number | string) {
    this.label = String(seed);
    this.next = mulberry32(hash32(this.label));
  }

  /** An independent stream derived from this one's seed and a label (its draws do not shift this one's). */
  child(label: string): Rng {
    return new Rng(`${this.label}/${label}`);
  }

  float(): number {
    return this.next();
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** Integer in [min, max] inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Poisson-distributed count (Knuth for small means, normal approximation above 30). */
  poisson(mean: number): number {
    if (mean <= 0) return 0;
    if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
    const limit = Math.exp(-mean);
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A confidence in [lo, hi], rounded to 3 decimals as detectors report it. */
  confidence(lo: number, hi: number): number {
    return Math.round(this.between(lo, hi) * 1000) / 1000;
  }
}
