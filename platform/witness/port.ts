/**
 * The witness port: somewhere outside the event store's database, chosen by the operator, that keeps
 * the chain heads (position + hash) the store publishes. A witness on another volume, another host or
 * another system is what makes tail truncation and full re-chaining of the store detectable: someone
 * who can rewrite the database cannot also rewrite what the witness already holds.
 *
 * Adapters: an append-only file (file.ts), an HTTP endpoint (http.ts), a Kafka compacted topic
 * (kafka.ts); `openWitness` (open.ts) picks one from a spec string. Each passes
 * test/contract/witness.contract.ts.
 */
export interface Anchor {
  /** Which store the head belongs to (several stores may share one witness). */
  store: string;
  position: number;
  hash: string;
  /** When it was published (ISO 8601). */
  at: string;
}

export interface Witness {
  /** For logs and reports, without credentials. */
  readonly name: string;
  /** Records one head; resolves once the witness has it (durably, for the file). */
  publish(anchor: Anchor): Promise<void>;
  /** Every head the witness holds for `store` (a compacted topic may keep only the latest). */
  read(store: string): Promise<Anchor[]>;
  close(): Promise<void>;
}

/** Parses one anchor, or undefined when the value is not one (a witness may hold other records). */
export function parseAnchor(value: unknown): Anchor | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const a = value as Record<string, unknown>;
  if (
    typeof a.store !== 'string' ||
    typeof a.position !== 'number' ||
    !Number.isSafeInteger(a.position) ||
    a.position < 1 ||
    typeof a.hash !== 'string' ||
    !/^[0-9a-f]{64}$/.test(a.hash) ||
    typeof a.at !== 'string'
  )
    return undefined;
  return { store: a.store, position: a.position, hash: a.hash, at: a.at };
}
