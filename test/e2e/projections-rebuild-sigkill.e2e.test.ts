/**
 * SIGKILL of `tourniquet projections rebuild` in the middle of the replay, several times. The views
 * are derived data written one page per transaction together with their checkpoint, so whatever a kill
 * leaves is a prefix of the rebuild: a projector starting on it resumes from the checkpoint, and a
 * rebuild run again starts over. Either way the views end row for row equal to a rebuild that was
 * never interrupted: no event lost, none folded twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, test } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import { Projector } from '../../services/projector/projector.ts';
import { CLI, REPO_ROOT } from '../support/cli.ts';
import { type ApprovedSpec, approvedActionEvents, verdictEvent } from '../support/executor-fixtures.ts';

const ACTIONS = 4000;
const KILLS = 4;

function rebuildProcess(dataDir: string): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [CLI, 'projections', 'rebuild', '--data-dir', dataDir], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TOURNIQUET_LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  return { child, output: () => out };
}

/** The rebuild's checkpoint as another reader sees it (0 before the first page commits). */
function checkpointReader(path: string): { read(): number | undefined; close(): void } {
  let db: Database.Database | undefined;
  return {
    read() {
      try {
        db ??= new Database(path, { readonly: true, fileMustExist: true });
        const row = db
          .prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'checkpoint'")
          .get();
        return Number(row?.value ?? 0);
      } catch {
        return undefined; // not created yet, or busy
      }
    },
    close() {
      db?.close();
    },
  };
}

async function dumpOf(
  storePath: string,
  projectionsPath: string,
  resume: boolean,
): Promise<Record<string, unknown[]>> {
  const store = new SqliteEventStore({ path: storePath });
  const projector = new Projector({ store, path: projectionsPath });
  try {
    if (resume) {
      await projector.start();
      await projector.waitFor(await store.headPosition(), 60_000);
    } else {
      await projector.rebuild();
    }
    return projector.dump();
  } finally {
    await projector.stop();
    await store.close();
  }
}

describe('SIGKILL during projections rebuild', () => {
  test('a killed rebuild, resumed or run again, ends with exactly the views of an uninterrupted one', {
    timeout: 240_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tq-rebuild-kill-'));
    const storePath = join(dataDir, 'events.db');
    const projections = join(dataDir, 'projections.db');
    const store = new SqliteEventStore({ path: storePath, durability: 'normal' });
    const batches = [];
    for (let i = 0; i < ACTIONS; i++) {
      const identity: IdentityRef = {
        provider: 'okta',
        id: `rebuild-${i % 700}@acme.example`,
        type: 'human',
      };
      const spec: ApprovedSpec = {
        identity,
        action: 'revoke_sessions',
        actionId: `act-rb-${i}`,
        caseId: `case-rb-${i}`,
      };
      const events = approvedActionEvents(spec, true);
      if (i % 3 === 0) events.push(verdictEvent(identity, spec.caseId, i % 2 === 0 ? 'benign' : 'malicious'));
      batches.push({ stream: events[0]!.stream, events, expected: 'any' as const });
      if (batches.length === 200) await store.appendMany(batches.splice(0));
    }
    if (batches.length > 0) await store.appendMany(batches);
    const head = await store.headPosition();
    await store.close();

    // the reference: an uninterrupted rebuild into another file
    const reference = await dumpOf(storePath, join(dataDir, 'reference.db'), false);
    expect(reference.audit).toHaveLength(head);

    let midway = 0;
    for (let k = 0; k < KILLS; k++) {
      // kill once the replay has committed some pages but not all of them
      const threshold = Math.floor(head * (0.15 + 0.6 * Math.random()));
      const run = rebuildProcess(dataDir);
      const reader = checkpointReader(projections);
      let seen: number | undefined;
      const deadline = Date.now() + 60_000;
      for (;;) {
        seen = reader.read();
        if (seen !== undefined && seen >= threshold && seen < head) break;
        if (run.child.exitCode !== null || Date.now() > deadline) break;
        await new Promise((r) => setImmediate(r));
      }
      if (run.child.exitCode === null) {
        run.child.kill('SIGKILL');
        await once(run.child, 'exit');
      }
      const after = reader.read() ?? 0;
      reader.close();
      if (after > 0 && after < head) midway += 1;
      if (process.env.TQ_DEBUG) console.log('kill', k, { threshold, seen, after, head });
    }
    expect(midway, 'kills that left a partial rebuild').toBeGreaterThan(0);

    // resumed by a projector (what a restarted server does) ...
    const partial = join(dataDir, 'partial.db');
    copyFileSync(projections, partial);
    for (const suffix of ['-wal', '-shm'])
      if (existsSync(projections + suffix)) copyFileSync(projections + suffix, partial + suffix);
    const resumed = await dumpOf(storePath, partial, true);
    expect(resumed.audit).toHaveLength(head);
    expect(resumed).toEqual(reference);

    // ... or rebuilt again by the command, to the end this time
    const again = rebuildProcess(dataDir);
    const [code] = await once(again.child, 'exit');
    expect(code, again.output()).toBe(0);
    const finished = await dumpOf(storePath, projections, true);
    expect(finished).toEqual(reference);
    const positions = (finished.audit as Array<{ position: number }>).map((r) => r.position);
    expect(new Set(positions).size).toBe(head);
  });
});
