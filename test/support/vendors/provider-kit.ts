/**
 * What every provider test against a local vendor sets up the same way: the vendor's lifetime around
 * the file's tests (each test failing if a request deviated from the vendor's description), and the
 * error a call ended with.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';

/** A local vendor whose every request is checked against its published description. */
interface LocalVendor {
  readonly fake: { assertNoDeviations(): void };
  start(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts the vendor before the file's tests (handing it and its URL to `started`), stops it after
 * them, and fails each test whose requests deviated from the description.
 */
export function useLocalVendor<V extends LocalVendor>(
  make: () => V,
  started: (vendor: V, url: string) => void,
): void {
  let vendor: V | undefined;
  beforeAll(async () => {
    vendor = make();
    started(vendor, await vendor.start());
  });
  afterAll(() => vendor?.stop());
  afterEach(() => vendor?.fake.assertNoDeviations());
}

/** The error the call ended with, or null when it succeeded. */
export const failureOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => null,
    (e: unknown) => e,
  );
