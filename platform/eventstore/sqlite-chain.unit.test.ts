import { afterEach, describe, expect, it } from 'vitest';
import { identityStream } from '../../schemas/events.ts';
import { ALICE, appendScriptedHistory } from '../../test/support/projector-kit.ts';
import { SqliteEventStore } from './sqlite.ts';
import { chainHash, verifySqliteChain as verifyChain } from './sqlite-chain.ts';

const stores: SqliteEventStore[] = [];
afterEach(async () => {
  while (stores.length) await stores.pop()!.close();
});

async function recorded() {
  const store = new SqliteEventStore({ path: ':memory:' });
  stores.push(store);
  await appendScriptedHistory(store);
  const db = store.database;
  const row = (id: string) =>
    db
      .prepare<[string], { position: number; stream: string; revision: number }>(
        'SELECT position, stream, revision FROM events WHERE id = ?',
      )
      .get(id)!;
  const swap = (a: number, b: number) => {
    db.prepare('UPDATE events SET position = -1 WHERE position = ?').run(a);
    db.prepare('UPDATE events SET position = ? WHERE position = ?').run(a, b);
    db.prepare('UPDATE events SET position = ? WHERE position = -1').run(b);
  };
  return { store, db, row, swap, head: await store.headPosition() };
}

/** What someone with write access to the file can do: recompute every hash from `from` to the end. */
function rechain(db: SqliteEventStore['database'], from: number): void {
  let prev =
    from === 1
      ? '0'.repeat(64)
      : db.prepare<[number], { hash: string }>('SELECT hash FROM events WHERE position = ?').get(from - 1)!
          .hash;
  const rows = db
    .prepare<[number], Record<string, unknown>>('SELECT * FROM events WHERE position >= ? ORDER BY position')
    .all(from);
  for (const r of rows) {
    const { hash: _old, ...content } = r;
    prev = chainHash(prev, content as never);
    db.prepare('UPDATE events SET hash = ? WHERE position = ?').run(prev, r.position);
  }
}

describe('verifyChain (tamper evidence)', () => {
  it('accepts an untouched store and returns the head hash to anchor', async () => {
    const { store, head } = await recorded();
    const v = verifyChain(store);
    expect(v).toMatchObject({ ok: true, checked: head, head: { position: head } });
    expect(v.head!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(v.firstBad).toBeUndefined();
  });

  it('names an altered event (payload rewritten in place)', async () => {
    const { store, db, row } = await recorded();
    const target = row('case-alice-1-resolved');
    db.prepare("UPDATE events SET data = replace(data, 'benign', 'malicious') WHERE id = ?").run(
      'case-alice-1-resolved',
    );
    const v = verifyChain(store);
    expect(v.ok).toBe(false);
    expect(v.firstBad).toMatchObject({
      problem: 'altered',
      id: 'case-alice-1-resolved',
      position: target.position,
    });
    expect(v.firstBad!.detail).toContain('case-alice-1-resolved');
    // every row is walked; the intact head ends before the altered row
    expect(v.checked).toBe(await store.headPosition());
    expect(v.head!.position).toBe(target.position - 1);
    expect(v.problems).toEqual([v.firstBad]);
    expect(v.problemCount).toBe(1);
  });

  it('reports every tampered row, not only the first: a later edit is not hidden behind an earlier one', async () => {
    const { store, db, row } = await recorded();
    const early = row('det-alice-d-1');
    const late = row('case-alice-1-resolved');
    db.prepare("UPDATE events SET data = replace(data, 'okta', 'OKTA') WHERE id = ?").run('det-alice-d-1');
    db.prepare("UPDATE events SET data = replace(data, 'benign', 'malicious') WHERE id = ?").run(
      'case-alice-1-resolved',
    );
    const v = verifyChain(store);
    expect(v.problems.map((p) => [p.problem, p.position])).toEqual([
      ['altered', early.position],
      ['altered', late.position],
    ]);
    expect(v.problemCount).toBe(2);
  });

  it('a swap reports the two moved rows and nothing after them; a delete reports the gap and nothing after it', async () => {
    const { store, db, row, swap } = await recorded();
    const a = row('det-alice-d-1');
    const b = row('case-alice-1-resolved');
    swap(a.position, b.position);
    const gone = row('act-alice-1-1-executed');
    db.prepare('DELETE FROM events WHERE id = ?').run('act-alice-1-1-executed');
    const v = verifyChain(store);
    expect(
      v.problems.map((p) => [p.problem, p.position]).sort((x, y) => Number(x[1]) - Number(y[1])),
    ).toEqual(
      [
        ['reordered', a.position],
        ['missing', gone.position],
        ['reordered', b.position],
      ].sort((x, y) => Number(x[1]) - Number(y[1])),
    );
  });

  it('with anchors: tail truncation with the position sequence fixed up, and a re-chained stream', async () => {
    const { store, db, head } = await recorded();
    const anchor = { ...verifyChain(store).head!, source: 'test witness' };
    expect(verifyChain(store, { anchors: [anchor] })).toMatchObject({
      ok: true,
      anchors: { checked: 1, matched: 1 },
    });
    // cut the last two rows and put the sequence back: the chain alone is consistent
    db.prepare('DELETE FROM events WHERE position > ?').run(head - 2);
    db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'events'").run(head - 2);
    expect(verifyChain(store).ok).toBe(true);
    expect(verifyChain(store, { anchors: [anchor] })).toMatchObject({
      ok: false,
      firstBad: { problem: 'truncated', position: head - 1 },
      anchors: { checked: 1, matched: 0 },
    });
  });

  it('with anchors: a full re-chain from an edited row is "rewritten" at the anchored position', async () => {
    const { store, db, row } = await recorded();
    const anchor = verifyChain(store).head!;
    const t = row('case-alice-1-resolved');
    db.prepare("UPDATE events SET data = replace(data, 'benign', 'malicious') WHERE id = ?").run(
      'case-alice-1-resolved',
    );
    rechain(db, t.position);
    expect(verifyChain(store).ok).toBe(true);
    expect(verifyChain(store, { anchors: [anchor] }).firstBad).toMatchObject({
      problem: 'rewritten',
      position: anchor.position,
    });
  });

  it('names an altered envelope field too (actor-free fields such as the time)', async () => {
    const { store, db, row } = await recorded();
    db.prepare("UPDATE events SET occurred_at = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(
      'act-alice-1-1-executed',
    );
    expect(verifyChain(store).firstBad).toMatchObject({
      problem: 'altered',
      id: 'act-alice-1-1-executed',
      position: row('act-alice-1-1-executed').position,
    });
  });

  it('catches a rewritten event whose own hash was recomputed: the next link breaks', async () => {
    const { store, db, row } = await recorded();
    const t = row('act-alice-1-1-approved-1');
    db.prepare(
      'UPDATE events SET data = replace(data, \'"final":true\', \'"final":false\') WHERE id = ?',
    ).run('act-alice-1-1-approved-1');
    const prev = db
      .prepare<[number], { hash: string }>('SELECT hash FROM events WHERE position = ?')
      .get(t.position - 1)!.hash;
    const r = db
      .prepare<[number], Record<string, unknown>>('SELECT * FROM events WHERE position = ?')
      .get(t.position)!;
    const { hash: _old, ...content } = r;
    db.prepare('UPDATE events SET hash = ? WHERE position = ?').run(
      chainHash(prev, content as never),
      t.position,
    );
    const v = verifyChain(store);
    expect(v.firstBad).toMatchObject({ problem: 'altered', position: t.position + 1 });
  });

  it('names a deleted event by position, stream and revision', async () => {
    const { store, db, row } = await recorded();
    const gone = row('act-alice-1-1-approved-1');
    db.prepare('DELETE FROM events WHERE id = ?').run('act-alice-1-1-approved-1');
    const v = verifyChain(store);
    expect(v.ok).toBe(false);
    expect(v.firstBad).toMatchObject({
      problem: 'missing',
      position: gone.position,
      id: null,
      stream: identityStream(ALICE),
      revision: gone.revision,
    });
    expect(v.firstBad!.detail).toContain(`lacks revision ${gone.revision}`);
  });

  it('notices the last event deleted (no gap between rows, but the position sequence remembers)', async () => {
    const { store, db, head } = await recorded();
    const last = db
      .prepare<[], { id: string; stream: string; revision: number }>(
        'SELECT id, stream, revision FROM events ORDER BY position DESC LIMIT 1',
      )
      .get()!;
    db.prepare('DELETE FROM events WHERE position = ?').run(head);
    const v = verifyChain(store);
    expect(v.firstBad).toMatchObject({
      problem: 'missing',
      position: head,
      stream: last.stream,
      revision: last.revision,
    });
    expect(v.checked).toBe(head - 1);
  });

  it('names reordered events: two neighbours swapped', async () => {
    const { store, row, swap } = await recorded();
    const a = row('act-alice-1-1-claimed-1');
    const b = row('act-alice-1-1-executed');
    expect(b.position).toBe(a.position + 1);
    swap(a.position, b.position);
    const v = verifyChain(store);
    expect(v.firstBad).toMatchObject({
      problem: 'reordered',
      position: a.position,
      id: 'act-alice-1-1-executed',
    });
    expect(v.firstBad!.detail).toContain(`recorded at position ${b.position}`);
  });

  it('names reordered events: two distant rows swapped', async () => {
    const { store, row, swap } = await recorded();
    const a = row('det-alice-d-1');
    const b = row('case-alice-1-resolved');
    swap(a.position, b.position);
    const v = verifyChain(store);
    expect(v.firstBad).toMatchObject({
      problem: 'reordered',
      position: a.position,
      id: 'case-alice-1-resolved',
    });
  });
});
