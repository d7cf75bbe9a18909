/**
 * Throttling of failed authentication. After `maxFailures` failures within `windowSeconds` from one
 * source address, or naming one key id (a JWT's `kid`, else its unverified `sub`), further requests
 * from that address or naming that id are refused with 429 and Retry-After until the window has
 * moved past enough of them — before any credential is checked, so a throttled client cannot go on
 * guessing (a right guess would be answered differently). Memory is bounded: at most `maxTracked`
 * addresses and ids are tracked, the oldest forgotten first.
 */

export interface AuthThrottleConfig {
  /** Failures allowed per address and per key id within the window (default 20). */
  maxFailures: number;
  /** The sliding window, seconds (default 60). */
  windowSeconds: number;
  /** Addresses and ids tracked at most (default 100,000). */
  maxTracked?: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleConfig = { maxFailures: 20, windowSeconds: 60 };

export type ThrottleScope = 'address' | 'key';

export class AuthThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(config: Partial<AuthThrottleConfig> = {}, now: () => number = Date.now) {
    this.maxFailures = config.maxFailures ?? DEFAULT_AUTH_THROTTLE.maxFailures;
    this.windowMs = (config.windowSeconds ?? DEFAULT_AUTH_THROTTLE.windowSeconds) * 1000;
    this.maxTracked = config.maxTracked ?? 100_000;
    this.now = now;
  }

  /** Seconds until a request from `address` naming `keyId` may try again, and why; undefined when it may now. */
  blocked(
    address: string,
    keyId: string | undefined,
  ): { retryAfterSeconds: number; scope: ThrottleScope } | undefined {
    const t = this.now();
    for (const [scope, key] of this.keys(address, keyId)) {
      const list = this.recent(key, t);
      if (list && list.length >= this.maxFailures) {
        // free again once the oldest failure that keeps it at the limit leaves the window
        const oldest = list[list.length - this.maxFailures]!;
        return { retryAfterSeconds: Math.max(1, Math.ceil((oldest + this.windowMs - t) / 1000)), scope };
      }
    }
    return undefined;
  }

  /** Records a failed authentication from `address` naming `keyId`. */
  failed(address: string, keyId: string | undefined): void {
    const t = this.now();
    for (const [, key] of this.keys(address, keyId)) {
      const list = this.recent(key, t) ?? [];
      list.push(t);
      this.failures.delete(key); // re-inserted last: the map's order is least recently failed first
      this.failures.set(key, list);
    }
    while (this.failures.size > this.maxTracked) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  private keys(address: string, keyId: string | undefined): Array<[ThrottleScope, string]> {
    const out: Array<[ThrottleScope, string]> = [['address', `a:${address}`]];
    if (keyId) out.push(['key', `k:${keyId}`]);
    return out;
  }

  /** The failures of `key` still inside the window (older ones dropped). */
  private recent(key: string, t: number): number[] | undefined {
    const list = this.failures.get(key);
    if (!list) return undefined;
    let drop = 0;
    while (drop < list.length && list[drop]! <= t - this.windowMs) drop++;
    if (drop === list.length) {
      this.failures.delete(key);
      return undefined;
    }
    if (drop > 0) list.splice(0, drop);
    return list;
  }
}
