import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { witnessContract } from '../../test/contract/witness.contract.ts';
import { FileWitness } from './file.ts';
import { HttpWitness } from './http.ts';
import { openWitness } from './open.ts';

witnessContract('append-only file', {
  keeps: 'all',
  newWitness: async () => new FileWitness(join(mkdtempSync(join(tmpdir(), 'tq-witness-')), 'heads.jsonl')),
});

/** A witness service as an operator might run one: keeps what is POSTed, answers GET ?store= with NDJSON. */
let server: Server;
let url = '';
const held: unknown[][] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const bucket = Number(u.pathname.slice(1));
    held[bucket] ??= [];
    if (req.method === 'POST') {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        held[bucket]!.push(JSON.parse(body));
        res.writeHead(201).end();
      });
      return;
    }
    const store = u.searchParams.get('store');
    const lines = held[bucket]!.filter((a) => (a as { store: string }).store === store).map((a) =>
      JSON.stringify(a),
    );
    res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(lines.join('\n'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let bucket = 0;
witnessContract('HTTP endpoint', {
  keeps: 'all',
  newWitness: async () => new HttpWitness({ url: `${url}/${++bucket}` }),
});

describe('witnesses: failures and specs', () => {
  it('a file line torn by a crash is not an anchor; the lines around it are', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tq-witness-')), 'heads.jsonl');
    const good = { store: 's', position: 3, hash: 'b'.repeat(64), at: '2026-12-06T03:00:00.000Z' };
    writeFileSync(
      path,
      `${JSON.stringify(good)}\n{"store":"s","posi\n${JSON.stringify({ ...good, position: 4 })}\n`,
    );
    expect((await new FileWitness(path).read('s')).map((a) => a.position)).toEqual([3, 4]);
  });

  it('an HTTP witness that answers 5xx or is unreachable fails publish with a retriable STORE_UNAVAILABLE', async () => {
    const down = createServer((_q, r) => r.writeHead(500).end());
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const w = new HttpWitness({ url: `http://127.0.0.1:${(down.address() as AddressInfo).port}/` });
    const a = { store: 's', position: 1, hash: 'c'.repeat(64), at: '2026-12-06T03:00:00.000Z' };
    await expect(w.publish(a)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
    await new Promise<void>((r) => down.close(() => r()));
    await expect(w.publish(a)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
  });

  it('openWitness picks the adapter from the spec and names what is wrong', () => {
    expect(openWitness('file:/tmp/x.jsonl').name).toBe('file:/tmp/x.jsonl');
    expect(openWitness('http://user:pw@127.0.0.1:9/w').name).toBe('http://127.0.0.1:9/w');
    expect(openWitness('kafka:tq-heads', { brokers: ['127.0.0.1:9'] }).name).toBe('kafka:tq-heads');
    expect(() => openWitness('kafka:tq-heads')).toThrow(/needs brokers/);
    expect(() => openWitness('ftp://x/y')).toThrow(/file:<path>/);
  });
});
