import type { Logger } from 'pino';
import type { ChainGuard } from '../platform/eventstore/chain-guard.ts';
import { type Anchoring, startAnchoring } from '../platform/witness/anchorer.ts';
import { openWitness } from '../platform/witness/open.ts';
import { envInteger } from './env.ts';

/**
 * Tamper evidence settings of a running stack (embedded or `serve`): the store's own chain check
 * (always on for a SQLite store) and head anchoring to an operator's witness (on when `anchor` is set).
 */
export interface IntegrityOptions {
  /** Witness spec: `file:<path>`, `http(s)://…` or `kafka:<topic>` (see platform/witness/open.ts). */
  anchor?: string;
  /** How often the head is published when it moved (default 60 s). */
  anchorIntervalMs?: number;
  /** The store's id in the witness (default `tourniquet`); several stores may share a witness. */
  storeId?: string;
  /** Full chain sweep interval (default 15 min; 0: only at start). */
  sweepIntervalMs?: number;
  /** Kafka brokers for a `kafka:` witness. */
  brokers?: string[];
  /** Headers for an HTTP witness (e.g. Authorization). */
  headers?: Record<string, string>;
}

const DEFAULT_ANCHOR_INTERVAL_MS = 60_000;
export const DEFAULT_ANCHOR_STORE_ID = 'tourniquet';

/** Options given in code win; the environment fills the rest (TOURNIQUET_ANCHOR, …). */
export function integrityFromEnv(
  given: IntegrityOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): IntegrityOptions {
  const int = (name: string) => envInteger(env, name, { min: 0, what: 'a whole number of milliseconds' });
  const headers = env.TOURNIQUET_ANCHOR_HEADERS;
  const brokers = env.TOURNIQUET_KAFKA_BROKERS ?? env.KAFKA_BOOTSTRAP;
  const out: IntegrityOptions = { ...given };
  out.anchor ??= env.TOURNIQUET_ANCHOR || undefined;
  out.anchorIntervalMs ??= int('TOURNIQUET_ANCHOR_INTERVAL_MS');
  out.storeId ??= env.TOURNIQUET_ANCHOR_STORE_ID || undefined;
  out.sweepIntervalMs ??= int('TOURNIQUET_CHAIN_SWEEP_MS');
  if (!out.brokers && brokers)
    out.brokers = brokers
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean);
  if (!out.headers && headers) out.headers = JSON.parse(headers) as Record<string, string>;
  for (const k of Object.keys(out) as Array<keyof IntegrityOptions>) if (out[k] === undefined) delete out[k];
  return out;
}

/**
 * Checks the store against the latest head the configured witness holds, then starts publishing the
 * store's verified head to it (nothing when no witness is set). A witness that cannot be read at
 * start is logged and skipped: the head file and the sweeps still run, and publishing retries.
 */
export async function startConfiguredAnchoring(
  guard: ChainGuard | undefined,
  opts: IntegrityOptions,
  log?: Logger,
): Promise<Anchoring | undefined> {
  if (!opts.anchor || !guard) return undefined;
  const witness = openWitness(opts.anchor, {
    ...(opts.brokers ? { brokers: opts.brokers } : {}),
    ...(opts.headers ? { headers: opts.headers } : {}),
    ...(log ? { log } : {}),
  });
  const storeId = opts.storeId ?? DEFAULT_ANCHOR_STORE_ID;
  try {
    const anchors = await witness.read(storeId);
    const latest = anchors.reduce<(typeof anchors)[number] | undefined>(
      (best, a) => (!best || a.position > best.position ? a : best),
      undefined,
    );
    if (latest)
      guard.checkAnchor({
        position: latest.position,
        hash: latest.hash,
        at: latest.at,
        source: witness.name,
      });
  } catch (err) {
    log?.warn(
      { err, witness: witness.name },
      'cannot read the witness at start: the stream is not compared with its anchors now',
    );
  }
  log?.info(
    { witness: witness.name, intervalMs: opts.anchorIntervalMs ?? DEFAULT_ANCHOR_INTERVAL_MS },
    'anchoring the chain head',
  );
  return startAnchoring({
    witness,
    store: storeId,
    status: () => guard.status(),
    intervalMs: opts.anchorIntervalMs ?? DEFAULT_ANCHOR_INTERVAL_MS,
    ...(log ? { log } : {}),
  });
}
