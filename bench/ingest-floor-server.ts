/**
 * The floor for the HTTP ingest bench: the least a durable ingest server can do. Plain Fastify and
 * better-sqlite3 (WAL, synchronous=FULL, the same 8 KiB pages), answering 202 once the rows of a
 * request are committed: per detection FLOOR_ROWS rows of FLOOR_ROW_BYTES of JSON (the rows and
 * sizes the real server wrote in the same run), with a chain hash and a unique id like the store's.
 * FLOOR_GROUP=1 shares one transaction among the requests arriving in the same event-loop turn
 * (group commit), the best this shape can do; otherwise one transaction per request.
 * Prints `listening on <url>` once ready. Run by bench/ingest.bench.ts, not by users.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import Fastify from 'fastify';

const path = process.env.FLOOR_DB!;
const rowsPerDetection = Number(process.env.FLOOR_ROWS ?? '1');
const rowBytes = Number(process.env.FLOOR_ROW_BYTES ?? '1000');
const grouped = process.env.FLOOR_GROUP === '1';

const db = new Database(path);
db.pragma('page_size = 8192');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL,
  revision INTEGER NOT NULL, data TEXT NOT NULL, hash TEXT NOT NULL, UNIQUE (stream, revision))`);
const insert = db.prepare('INSERT INTO events (id, stream, revision, data, hash) VALUES (?, ?, ?, ?, ?)');
let prevHash = '0'.repeat(64);

interface Item {
  id: string;
  identity: { id: string };
}

/** One detection's rows: its own JSON first, padded to the measured row size. */
function insertDetection(d: Item): void {
  const json = JSON.stringify({ detection: d });
  for (let r = 0; r < rowsPerDetection; r++) {
    const data = json.length >= rowBytes ? json : json + ' '.repeat(rowBytes - json.length);
    prevHash = createHash('sha256').update(prevHash).update(data).digest('hex');
    insert.run(`${d.id}-${r}`, `${d.identity.id}/${d.id}`, r, data, prevHash);
  }
}
const insertRequest = db.transaction((items: readonly Item[]) => {
  for (const d of items) insertDetection(d);
});
/** Several requests in one transaction, each in its own savepoint (a bad one fails alone). */
const insertGroup = db.transaction((requests: ReadonlyArray<readonly Item[]>) =>
  requests.map((items) => {
    try {
      insertRequest(items);
      return undefined;
    } catch (err) {
      return err as Error;
    }
  }),
);

let queue: Array<{ items: readonly Item[]; done: (err?: Error) => void }> = [];
function flush(): void {
  const group = queue;
  queue = [];
  try {
    const errors = insertGroup.immediate(group.map((g) => g.items));
    for (const [i, g] of group.entries()) g.done(errors[i]);
  } catch (err) {
    for (const g of group) g.done(err as Error);
  }
}

const app = Fastify({ bodyLimit: 16 * 1024 * 1024 });
app.post('/v1/detections', async (req, reply) => {
  const body = req.body as Item | Item[];
  const items = Array.isArray(body) ? body : [body];
  if (grouped) {
    await new Promise<void>((resolve, reject) => {
      queue.push({ items, done: (err) => (err ? reject(err) : resolve()) });
      if (queue.length === 1) setImmediate(flush);
    });
  } else insertRequest.immediate(items);
  reply.status(202);
  return { accepted: items.length };
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on ${url}\n`);
const stop = async () => {
  await app.close();
  db.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
