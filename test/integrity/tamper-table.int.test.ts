/**
 * The tamper table: each way someone with write access to the database file can alter the record
 * (the events and the raw vendor records they name by digest),
 * done to a live embedded stack with anchoring on, must be noticed by the running server (/readyz
 * false, writes refused with CHAIN_BROKEN), by a restart on the altered store, and by
 * `tourniquet audit verify --anchor <witness>`.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { runAuditVerify, runProjectionsRebuild } from '../../app/cli/admin.ts';
import { type EmbeddedStack, startEmbedded } from '../../app/embedded.ts';
import { chainHash } from '../../platform/eventstore/chain-hash.ts';
import type { ChainVerdict } from '../../platform/eventstore/port.ts';

type Db = Database.Database;
type Row = Record<string, unknown> & { position: number; hash: string };

const rows = (db: Db, from = 1) =>
  db.prepare<[number], Row>('SELECT * FROM events WHERE position >= ? ORDER BY position').all(from);
const lastPosition = (db: Db) =>
  db.prepare<[], { p: number }>('SELECT MAX(position) AS p FROM events').get()!.p;

/** Recomputes every hash from `from` to the end, as an attacker who knows the scheme would. */
function rechain(db: Db, from: number): void {
  let prev =
    from === 1
      ? '0'.repeat(64)
      : db.prepare<[number], { hash: string }>('SELECT hash FROM events WHERE position = ?').get(from - 1)!
          .hash;
  for (const r of rows(db, from)) {
    const { hash: _old, ...content } = r;
    prev = chainHash(prev, content as never);
    db.prepare('UPDATE events SET hash = ? WHERE position = ?').run(prev, r.position);
  }
}

/** Rewrites the head file beside the database to the current last row (same volume: the attacker can). */
function forgeHeadFile(storePath: string, db: Db): void {
  const last = db.prepare<[], Row>('SELECT * FROM events ORDER BY position DESC LIMIT 1').get()!;
  writeFileSync(
    `${storePath}.head`,
    JSON.stringify({ position: last.position, hash: last.hash, at: new Date().toISOString() }),
  );
}

interface Tamper {
  name: string;
  /** What the attacker does, through their own connection to the file. */
  apply(db: Db, storePath: string): void;
  /** Problems `audit verify --anchor` must report (at least these kinds). */
  expect: ChainVerdict['problems'][number]['problem'][];
}

const middle = (db: Db) => Math.floor(lastPosition(db) / 2);

const TAMPERS: Tamper[] = [
  {
    name: 'payload edit',
    apply: (db) => {
      db.prepare("UPDATE events SET data = replace(data, 'okta', 'OKTA') WHERE position = ?").run(middle(db));
    },
    expect: ['altered'],
  },
  {
    name: 're-hashed edit (the row gets a valid hash of its new content)',
    apply: (db) => {
      const p = middle(db);
      db.prepare("UPDATE events SET data = replace(data, 'okta', 'OKTA') WHERE position = ?").run(p);
      const prev = db
        .prepare<[number], { hash: string }>('SELECT hash FROM events WHERE position = ?')
        .get(p - 1)!.hash;
      const { hash: _h, ...content } = rows(db, p)[0]!;
      db.prepare('UPDATE events SET hash = ? WHERE position = ?').run(chainHash(prev, content as never), p);
    },
    expect: ['altered'],
  },
  {
    name: 'delete',
    apply: (db) => {
      db.prepare('DELETE FROM events WHERE position = ?').run(middle(db));
    },
    expect: ['missing'],
  },
  {
    name: 'swap',
    apply: (db) => {
      const a = middle(db);
      const b = a + 2;
      db.prepare('UPDATE events SET position = -1 WHERE position = ?').run(a);
      db.prepare('UPDATE events SET position = ? WHERE position = ?').run(a, b);
      db.prepare('UPDATE events SET position = ? WHERE position = -1').run(b);
    },
    expect: ['reordered'],
  },
  {
    name: 'raw record edit (the vendor record a chained detection names by digest)',
    apply: (db) => {
      db.prepare(
        "UPDATE raw_records SET body = replace(body, 'evt-', 'EVT-') WHERE sha256 = (SELECT sha256 FROM raw_records ORDER BY rowid LIMIT 1 OFFSET 4)",
      ).run();
    },
    expect: ['altered'],
  },
  {
    name: 'raw record delete',
    apply: (db) => {
      db.prepare(
        'DELETE FROM raw_records WHERE sha256 = (SELECT sha256 FROM raw_records ORDER BY rowid LIMIT 1 OFFSET 4)',
      ).run();
    },
    expect: ['missing'],
  },
  {
    name: 'tail truncation with the position sequence fixed up (and the head file forged)',
    apply: (db, storePath) => {
      const cut = lastPosition(db) - 3;
      db.prepare('DELETE FROM events WHERE position > ?').run(cut);
      db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'").run(cut);
      forgeHeadFile(storePath, db);
    },
    expect: ['truncated'],
  },
  {
    name: 'full re-chain after an edit (and the head file forged)',
    apply: (db, storePath) => {
      const p = middle(db);
      db.prepare("UPDATE events SET data = replace(data, 'okta', 'OKTA') WHERE position = ?").run(p);
      rechain(db, p);
      forgeHeadFile(storePath, db);
    },
    expect: ['rewritten'],
  },
];

function detection(n: number) {
  return {
    id: `tamper-${n}`,
    source: 'okta',
    kind: 'known_compromise',
    confidence: 0.95,
    severity: 'critical',
    identity: { provider: 'okta', id: `user-${n % 4}@acme.example`, type: 'human' },
    occurredAt: new Date(Date.UTC(2026, 11, 6, 1, 0, n)).toISOString(),
    raw: {
      vendor: 'okta',
      uuid: `evt-${n}`,
      eventType: 'user.account.report_suspicious_activity_by_enduser',
    },
  };
}

function sink(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(c, _e, cb) {
      chunks.push(String(c));
      cb();
    },
  }) as Writable & { text: () => string };
  w.text = () => chunks.join('');
  return w;
}

interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked with toMatchObject
  json: any;
}

async function post(stack: EmbeddedStack, body: unknown): Promise<Answer> {
  const res = await fetch(`${stack.url}/v1/detections`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.adminToken}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

async function readyz(stack: EmbeddedStack): Promise<Answer> {
  const res = await fetch(`${stack.url}/readyz`);
  return { status: res.status, json: await res.json() };
}

async function until<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const quiet = pino({ level: 'silent' });

async function recordedStack(dataDir: string, witness: string): Promise<EmbeddedStack> {
  return startEmbedded({
    dataDir,
    port: 0,
    log: quiet,
    integrity: { anchor: `file:${witness}`, anchorIntervalMs: 50, sweepIntervalMs: 100 },
  });
}

describe('the tamper table (anchoring on)', () => {
  it.each(TAMPERS)(
    '$name: noticed by the running server, by a restart and by audit verify --anchor',
    async (t) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'tq-tamper-'));
      // the witness lives elsewhere: another directory standing for another volume
      const witness = join(mkdtempSync(join(tmpdir(), 'tq-witness-')), 'anchors.jsonl');
      const stack = await recordedStack(dataDir, witness);
      try {
        for (let i = 0; i < 12; i += 3) {
          const r = await post(stack, [detection(i), detection(i + 1), detection(i + 2)]);
          expect(r.status).toBe(202);
        }
        expect((await readyz(stack)).json).toMatchObject({ ready: true, chain: { ok: true } });
        await stack.store.integrity!.sweep();
        await stack.anchoring!.flush();
        const anchored = readFileSync(witness, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        expect(anchored.at(-1)).toMatchObject({
          store: 'tourniquet',
          position: lastPosition(stack.store.database),
        });

        const attacker = new Database(stack.storePath);
        t.apply(attacker, stack.storePath);
        attacker.close();

        // the running server notices by itself (its sweep or its next append) ...
        const r = await until(
          'readyz false',
          () => readyz(stack),
          (v) => v.status === 503,
          10_000,
        );
        expect(r.json).toMatchObject({ ready: false, chain: { ok: false, code: 'CHAIN_BROKEN' } });
        // ... and refuses writes with a clear code
        const refused = await post(stack, [detection(100)]);
        expect(refused.status).toBe(503);
        expect(refused.json.error).toMatchObject({ code: 'CHAIN_BROKEN', retriable: false });
      } finally {
        await stack.close();
      }

      // a restart on the altered store starts refusing: the head file (or the sweep) says so
      const again = await recordedStack(dataDir, witness);
      try {
        const r = await until(
          'readyz false after restart',
          () => readyz(again),
          (v) => v.status === 503,
          10_000,
        );
        expect(r.json.chain).toMatchObject({ ok: false, code: 'CHAIN_BROKEN' });
        expect((await post(again, [detection(200)])).status).toBe(503);
      } finally {
        await again.close();
      }

      // audit verify against the witness names the problem
      const out = sink();
      expect(await runAuditVerify(dataDir, out, { anchor: [`file:${witness}`], json: true })).toBe(3);
      const verdict = JSON.parse(out.text()) as ChainVerdict;
      expect(verdict.ok).toBe(false);
      for (const kind of t.expect) expect(verdict.problems.map((p) => p.problem)).toContain(kind);

      // and projections rebuild refuses the store unless forced
      const err = sink();
      expect(await runProjectionsRebuild(dataDir, sink(), { anchor: [`file:${witness}`], err })).toBe(3);
      expect(err.text()).toContain('projections not rebuilt');
      expect(
        await runProjectionsRebuild(dataDir, sink(), {
          anchor: [`file:${witness}`],
          force: true,
          err: sink(),
        }),
      ).toBe(0);
    },
  );

  it('an untouched store passes: the server stays ready and verify --anchor is ok across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tq-tamper-'));
    const witness = join(mkdtempSync(join(tmpdir(), 'tq-witness-')), 'anchors.jsonl');
    for (let round = 0; round < 2; round++) {
      const stack = await recordedStack(dataDir, witness);
      try {
        expect((await post(stack, [detection(round * 10), detection(round * 10 + 1)])).status).toBe(202);
        const status = await stack.store.integrity!.sweep();
        expect(status).toMatchObject({ ok: true });
        expect((await readyz(stack)).json).toMatchObject({ ready: true, chain: { ok: true } });
      } finally {
        await stack.close();
      }
    }
    const out = sink();
    expect(await runAuditVerify(dataDir, out, { anchor: [`file:${witness}`], json: true })).toBe(0);
    const verdict = JSON.parse(out.text()) as ChainVerdict;
    expect(verdict.anchors.checked).toBeGreaterThan(1);
    expect(verdict.anchors.matched).toBe(verdict.anchors.checked);
  });
});
