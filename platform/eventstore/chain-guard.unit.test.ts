import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { identityStream, type NewEvent, SCHEMA_VERSION } from '../../schemas/events.ts';
import { SqliteEventStore } from './sqlite.ts';

const open: SqliteEventStore[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

function store(path: string): SqliteEventStore {
  const s = new SqliteEventStore({ path, durability: 'normal', integrity: { sweepIntervalMs: 0 } });
  open.push(s);
  return s;
}

const identity = { provider: 'okta', id: 'alice', type: 'human' as const };
let n = 0;
function detection(): NewEvent {
  n += 1;
  return {
    id: `guard-${n}`,
    type: 'DetectionReceived',
    stream: identityStream(identity),
    occurredAt: new Date(Date.UTC(2026, 11, 6, 3, 0, n)).toISOString(),
    causationId: null,
    correlationId: null,
    schemaVersion: SCHEMA_VERSION,
    data: { detection: { id: `d-${n}` } },
  } as unknown as NewEvent;
}
const append = (s: SqliteEventStore) => s.append(identityStream(identity), [detection()], 'any');

describe('chain guard (the running store checks its own chain)', () => {
  it('several writers on one file (the serve processes) never raise a false alarm', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tq-guard-')), 'events.db');
    const a = store(path);
    const b = store(path);
    for (let i = 0; i < 30; i++) await append(i % 3 === 0 ? b : a);
    expect(a.integrity!.status()).toMatchObject({ ok: true, head: { position: 30 } });
    expect((await a.integrity!.sweep()).ok).toBe(true);
    expect((await b.integrity!.sweep()).ok).toBe(true);
    // the head file holds the newest head either writer recorded
    expect(JSON.parse(readFileSync(`${path}.head`, 'utf8'))).toMatchObject({ position: 30 });
  });

  it('an edit under one writer is refused by every writer at its next append, with CHAIN_BROKEN', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tq-guard-')), 'events.db');
    const a = store(path);
    const b = store(path);
    for (let i = 0; i < 5; i++) await append(a);
    await append(b);
    // rewrite the last row and its hash consistently: only the head each writer knew gives it away
    const attacker = new Database(path);
    attacker.prepare("UPDATE events SET data = '{}', hash = ? WHERE position = 6").run('f'.repeat(64));
    attacker.close();
    for (const s of [a, b]) {
      await expect(append(s)).rejects.toMatchObject({ code: 'CHAIN_BROKEN', status: 503, retriable: false });
      expect(s.integrity!.status()).toMatchObject({ ok: false, code: 'CHAIN_BROKEN' });
      // and stays refused: nothing clears it but an operator reopening the store
      await expect(append(s)).rejects.toMatchObject({ code: 'CHAIN_BROKEN' });
    }
  });

  it('a restart compares the head file with what it finds; an empty head file is no head, not an alarm', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tq-guard-')), 'events.db');
    const first = store(path);
    for (let i = 0; i < 4; i++) await append(first);
    await first.close();
    open.pop();
    // a clean restart: the head file matches
    const second = store(path);
    expect(second.integrity!.status()).toMatchObject({ ok: true, head: { position: 4 } });
    await append(second);
    await second.close();
    open.pop();
    // the tail cut while the server was down, sequence fixed up: the head file remembers position 5
    const attacker = new Database(path);
    attacker.prepare('DELETE FROM events WHERE position = 5').run();
    attacker.prepare("UPDATE sqlite_sequence SET seq = 4 WHERE name = 'events'").run();
    attacker.close();
    const third = store(path);
    expect(third.integrity!.status()).toMatchObject({ ok: false, code: 'CHAIN_BROKEN' });
    expect(third.integrity!.status().problems![0]).toMatchObject({ problem: 'truncated' });
    await third.close();
    open.pop();
    // a head file emptied (or never written): trusted on first use, checked by the sweep
    writeFileSync(`${path}.head`, '');
    const fourth = store(path);
    expect(fourth.integrity!.status().ok).toBe(true);
    expect((await fourth.integrity!.sweep()).ok).toBe(true);
  });
});
