import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TourniquetError } from '../../platform/errors.ts';
import type { ChainAnchor, ChainVerdict } from '../../platform/eventstore/port.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { openWitness } from '../../platform/witness/open.ts';
import { Projector } from '../../services/projector/projector.ts';
import { DEFAULT_ANCHOR_STORE_ID, integrityFromEnv } from '../integrity.ts';

function storePath(dataDir: string): string {
  const path = join(dataDir, 'events.db');
  if (!existsSync(path)) {
    throw new TourniquetError('NOT_FOUND', `no event store at ${path} (use --data-dir)`, { status: 404 });
  }
  return path;
}

export interface VerifyCliOptions {
  /** Witness specs to check the stream against (file:…, http(s)://…, kafka:<topic>). */
  anchor?: string[];
  /** The store's id in the witnesses (default `tourniquet`). */
  anchorStore?: string;
}

/**
 * Anchors to compare the stream with: the head file beside the database (same volume: it catches
 * edits made while the server was down, not someone who also rewrites the file) and every witness given.
 */
async function collectAnchors(path: string, opts: VerifyCliOptions): Promise<ChainAnchor[]> {
  const anchors: ChainAnchor[] = [];
  const headFile = `${path}.head`;
  if (existsSync(headFile)) {
    const h = JSON.parse(readFileSync(headFile, 'utf8')) as { position: number; hash: string; at?: string };
    anchors.push({ position: h.position, hash: h.hash, ...(h.at ? { at: h.at } : {}), source: headFile });
  }
  const env = integrityFromEnv({});
  for (const spec of opts.anchor ?? []) {
    const witness = openWitness(spec, {
      ...(env.brokers ? { brokers: env.brokers } : {}),
      ...(env.headers ? { headers: env.headers } : {}),
    });
    try {
      const read = await witness.read(opts.anchorStore ?? env.storeId ?? DEFAULT_ANCHOR_STORE_ID);
      if (read.length === 0) {
        throw new TourniquetError(
          'NOT_FOUND',
          `witness ${witness.name} holds no anchor for store "${opts.anchorStore ?? env.storeId ?? DEFAULT_ANCHOR_STORE_ID}": nothing to check the stream against`,
          { status: 404 },
        );
      }
      for (const a of read)
        anchors.push({ position: a.position, hash: a.hash, at: a.at, source: witness.name });
    } finally {
      await witness.close();
    }
  }
  return anchors;
}

async function verifyStore(path: string, opts: VerifyCliOptions): Promise<ChainVerdict> {
  const anchors = await collectAnchors(path, opts);
  const store = new SqliteEventStore({ path });
  try {
    return await store.verifyChain({ anchors });
  } finally {
    await store.close();
  }
}

export async function runAuditVerify(
  dataDir: string,
  out: NodeJS.WritableStream,
  opts: VerifyCliOptions = {},
): Promise<number> {
  const report = await verifyStore(storePath(dataDir), opts);
  out.write(`${JSON.stringify(report)}\n`);
  return report.ok ? 0 : 3;
}

/**
 * Rebuilds the projections from the event stream, after verifying the stream: a tampered store is
 * refused (exit 3, nothing rebuilt) unless `force`, so that views never silently launder altered events.
 */
export async function runProjectionsRebuild(
  dataDir: string,
  out: NodeJS.WritableStream,
  opts: VerifyCliOptions & { force?: boolean; err?: NodeJS.WritableStream } = {},
): Promise<number> {
  const path = storePath(dataDir);
  const verdict = await verifyStore(path, opts);
  if (!verdict.ok) {
    const err = opts.err ?? out;
    err.write(
      `the event store's hash chain does not verify (${verdict.problemCount} problem(s); first: ${verdict.firstBad?.problem} at position ${verdict.firstBad?.position}: ${verdict.firstBad?.detail})\n`,
    );
    if (!opts.force) {
      err.write('projections not rebuilt; run `tourniquet audit verify` and investigate, or pass --force\n');
      return 3;
    }
    err.write('--force: rebuilding from the store as it is\n');
  }
  const store = new SqliteEventStore({ path });
  const projector = new Projector({ store, path: join(dataDir, 'projections.db') });
  try {
    const started = Date.now();
    await projector.rebuild();
    out.write(`rebuilt projections to position ${projector.position} in ${Date.now() - started} ms\n`);
    return 0;
  } finally {
    await projector.stop();
    await store.close();
  }
}
