import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
const dir = mkdtempSync(join(tmpdir(), 'tq-prof-'));
import { spawnSync } from 'node:child_process';
const k = spawnSync(process.execPath, ['bin/tourniquet.js', 'auth', 'add-key', '--data-dir', dir, '--id', 'siem', '--roles', 'service'], { encoding: 'utf8' });
const apiKey = k.stdout.split('\n')[0].trim();
const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/ingprof', 'bin/tourniquet.js', 'start', '--data-dir', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TOURNIQUET_LOG_LEVEL: 'warn' } });
let out = '';
child.stdout!.on('data', (b) => (out += b));
while (!/admin token file[^:]*: (\S+)/.test(out)) await new Promise((r) => setTimeout(r, 50));
const url = /listening on (\S+)/.exec(out)![1]!;
const token = apiKey;
const batch = Number(process.env.B ?? '100');
const conc = Number(process.env.C ?? '16');
const pool = new Pool(url, { connections: conc });
let n = 0; let done = 0;
const until = Date.now() + 8000;
const det = (i: number) => ({ id: `p-${i}`, source: 'splunk', kind: 'anomalous_token_use', confidence: 0.25, severity: 'low', identity: { provider: 'okta', id: `user-${i % 50000}@acme.example`, type: 'human' }, occurredAt: new Date().toISOString(), raw: { description: 'x'.repeat(700) } });
await Promise.all(Array.from({ length: conc }, async () => {
  while (Date.now() < until) {
    const items = Array.from({ length: batch }, () => det(n++));
    const res = await pool.request({ path: '/v1/detections', method: 'POST', headers: { 'content-type': 'application/json', "x-api-key": token }, body: JSON.stringify(batch === 1 ? items[0] : items) });
    await res.body.text();
    if (res.statusCode !== 202) throw new Error(String(res.statusCode));
    done += batch;
  }
}));
console.log('detections/s', done / 8);
child.kill('SIGINT');
await new Promise((r) => child.on('exit', r));
