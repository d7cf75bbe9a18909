import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redeliverDeadLetters } from './redeliver.ts';
import type { SignalDeadLetter } from './transmitter.ts';

/** A receiver that accepts every SET but the ones whose body says "still-bad", which it refuses (400). */
const receiver = Fastify();
const accepted: string[] = [];
let url = '';
beforeAll(async () => {
  receiver.addContentTypeParser('application/secevent+jwt', { parseAs: 'string' }, (_r, b, done) =>
    done(null, b),
  );
  receiver.post('/push', async (req, reply) => {
    const jwt = req.body as string;
    if (jwt.includes('still-bad'))
      return reply.status(400).send({ err: 'invalid_subject', description: 'nope' });
    if (jwt.includes('busy')) return reply.status(503).send();
    accepted.push(jwt);
    return reply.status(202).send();
  });
  receiver.post('/slow', async (_req, reply) => {
    await new Promise((r) => setTimeout(r, 1000));
    return reply.status(202).send();
  });
  url = `${await receiver.listen({ host: '127.0.0.1', port: 0 })}/push`;
});
afterAll(() => receiver.close());

function letter(receiverName: string, set: string): SignalDeadLetter {
  return {
    at: '2026-11-29T10:00:00.000Z',
    receiver: receiverName,
    type: 'session-revoked',
    jti: `jti-${set}`,
    eventId: `evt-${set}`,
    position: 7,
    status: 400,
    answer: '{"err":"invalid_subject"}',
    set,
  };
}

describe('signals redeliver: refused SETs sent again once the receiver is fixed', () => {
  it('delivers what is accepted now, keeps the rest (with the new answer), never loses a line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-redeliver-'));
    const path = join(dir, 'signals-dead-letters.jsonl');
    const lines = [
      letter('app', 'fixed-now'),
      letter('app', 'still-bad'),
      letter('app', 'busy'),
      letter('gone', 'old-receiver'),
      letter('other', 'not-chosen'),
    ].map((l) => JSON.stringify(l));
    writeFileSync(path, `${lines.join('\n')}\nnot json\n`);
    const receivers = [
      { name: 'app', url, audience: 'a' },
      { name: 'other', url, audience: 'o' },
    ];

    const dry = await redeliverDeadLetters({ path, receivers, only: ['app'], dryRun: true });
    expect(dry).toMatchObject({ read: 6, toSend: 3, delivered: 0, skipped: 2, malformed: 1 });
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(6);
    expect(accepted).toEqual([]);

    const report = await redeliverDeadLetters({
      path,
      receivers,
      only: ['app'],
      now: () => new Date('2026-11-30T00:00:00Z'),
    });
    expect(report).toMatchObject({
      read: 6,
      toSend: 3,
      delivered: 1,
      refused: 1,
      failed: 1,
      skipped: 2,
      malformed: 1,
    });
    expect(accepted).toEqual(['fixed-now']);
    const kept = readFileSync(path, 'utf8').trim().split('\n');
    expect(kept).toHaveLength(5);
    const parsed = kept.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as SignalDeadLetter);
    expect(parsed.map((l) => l.set).sort()).toEqual(['busy', 'not-chosen', 'old-receiver', 'still-bad']);
    expect(parsed.find((l) => l.set === 'still-bad')).toMatchObject({
      at: '2026-11-30T00:00:00.000Z',
      status: 400,
    });
    expect(parsed.find((l) => l.set === 'busy')).toMatchObject({ at: '2026-11-29T10:00:00.000Z' });
    expect(kept).toContain('not json');
    expect(readdirSync(dir)).toEqual(['signals-dead-letters.jsonl']); // the moved-aside file is gone
  });

  it('finishes a moved-aside file from a stopped run into the live file; nothing to do without a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-redeliver-'));
    const live = join(dir, 'signals-dead-letters.jsonl');
    const aside = `${live}.redelivering-1`;
    writeFileSync(
      aside,
      `${JSON.stringify(letter('app', 'still-bad'))}\n${JSON.stringify(letter('app', 'ok-2'))}\n`,
    );
    writeFileSync(live, `${JSON.stringify(letter('app', 'newer'))}\n`);
    const report = await redeliverDeadLetters({
      path: aside,
      keepPath: live,
      receivers: [{ name: 'app', url, audience: 'a' }],
    });
    expect(report).toMatchObject({ read: 2, delivered: 1, refused: 1 });
    expect(existsSync(aside)).toBe(false);
    expect(
      readFileSync(live, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as SignalDeadLetter).set),
    ).toEqual(['newer', 'still-bad']);
    expect(await redeliverDeadLetters({ path: join(dir, 'none.jsonl'), receivers: [] })).toMatchObject({
      read: 0,
    });

    // a receiver too slow to answer within its timeout: not delivered now, kept, and the run goes on
    writeFileSync(live, `${JSON.stringify(letter('slow', 'late'))}\n`);
    const slow = await redeliverDeadLetters({
      path: live,
      receivers: [{ name: 'slow', url: url.replace(/\/push$/, '/slow'), audience: 's', timeoutMs: 100 }],
    });
    expect(slow).toMatchObject({ read: 1, failed: 1, delivered: 0 });
    expect((JSON.parse(readFileSync(live, 'utf8').trim()) as SignalDeadLetter).set).toBe('late');
  });
});
