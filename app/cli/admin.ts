import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TourniquetError } from '../../platform/errors.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { verifyChain } from '../../services/projector/audit-verify.ts';
import { Projector } from '../../services/projector/projector.ts';

function openStore(dataDir: string): SqliteEventStore {
  const path = join(dataDir, 'events.db');
  if (!existsSync(path)) {
    throw new TourniquetError('NOT_FOUND', `no event store at ${path} (use --data-dir)`, { status: 404 });
  }
  return new SqliteEventStore({ path });
}

export async function runAuditVerify(dataDir: string, out: NodeJS.WritableStream): Promise<number> {
  const store = openStore(dataDir);
  try {
    const report = verifyChain(store);
    out.write(`${JSON.stringify(report)}\n`);
    return report.ok ? 0 : 3;
  } finally {
    await store.close();
  }
}

export async function runProjectionsRebuild(dataDir: string, out: NodeJS.WritableStream): Promise<number> {
  const store = openStore(dataDir);
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
