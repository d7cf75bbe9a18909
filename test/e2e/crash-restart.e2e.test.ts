import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { DryRunProvider } from '../../services/executor/providers/dry-run.ts';
import { killHard, startStackProcess, stopGracefully } from '../support/cli.ts';

function detection(n: number) {
  return {
    id: `crash-${n}`,
    source: 'okta',
    kind: 'known_compromise',
    confidence: 0.95,
    severity: 'critical',
    identity: { provider: 'okta', id: `user-${n}@acme.example`, type: 'human' },
    occurredAt: new Date().toISOString(),
  };
}

describe('crash and restart of the embedded stack', () => {
  it('keeps every detection answered 202 and never executes an action twice across SIGKILLs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tq-crash-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const accepted = new Set<string>();
    let n = 0;
    for (let round = 0; round < 3; round++) {
      const stack = await startStackProcess([
        '--data-dir',
        dataDir,
        '--port',
        String(port),
        '--tick',
        '1000',
      ]);
      // Four clients post continuously; the stack is killed mid-stream once this round has some
      // 202s. Only a 202 promises anything; a request cut by the kill promises nothing.
      const target = accepted.size + 10 + Math.floor(Math.random() * 30);
      let alive = true;
      const client = async () => {
        while (alive) {
          const batch = [detection(n++), detection(n++)];
          try {
            const res = await fetch(`${stack.url}/v1/detections`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.adminToken}` },
              body: JSON.stringify(batch),
            });
            const text = await res.text();
            if (res.status === 202) for (const d of batch) accepted.add(d.id);
            else throw new Error(`unexpected ${res.status}: ${text}`);
          } catch (err) {
            // A connection cut by the kill ends this client; any other answer is a failure.
            if (err instanceof Error && err.message.startsWith('unexpected')) throw err;
            alive = false;
          }
          if (alive && accepted.size >= target) {
            alive = false;
            await killHard(stack);
          }
        }
      };
      await Promise.all([client(), client(), client(), client()]);
      if (process.env.TQ_DEBUG) console.log('round', round, 'accepted', accepted.size);
      await killHard(stack);
    }
    // Final start lets the executor finish whatever was approved before the last kill.
    const last = await startStackProcess(['--data-dir', dataDir, '--port', String(port)]);
    const deadline = Date.now() + 20_000;
    let store = new SqliteEventStore({ path: join(dataDir, 'events.db') });
    for (;;) {
      const approved = (await store.readAll({ types: ['ActionApproved'] })).length;
      const outcomes = (await store.readAll({ types: ['ActionExecuted', 'ActionFailed'] })).length;
      if (approved === outcomes || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await stopGracefully(last);
    await store.close();
    store = new SqliteEventStore({ path: join(dataDir, 'events.db') });

    expect(accepted.size).toBeGreaterThan(0);
    const received = new Set(
      (await store.readAll({ types: ['DetectionReceived'] })).map((e) =>
        e.type === 'DetectionReceived' ? e.data.detection.id : '',
      ),
    );
    for (const id of accepted)
      expect(received.has(id), `accepted detection ${id} is in the store`).toBe(true);

    const approved = (await store.readAll({ types: ['ActionApproved'] })).map((e) =>
      e.type === 'ActionApproved' ? e.data.actionId : '',
    );
    const executed = (await store.readAll({ types: ['ActionExecuted'] })).map((e) =>
      e.type === 'ActionExecuted' ? e.data.actionId : '',
    );
    expect(new Set(executed).size).toBe(executed.length); // one ActionExecuted per action
    expect(new Set(executed)).toEqual(new Set(approved)); // every approved action ended executed

    // The provider saw exactly one effect per action, counted from its own crash-safe journal.
    const provider = new DryRunProvider({ journalPath: join(dataDir, 'dry-run-calls.jsonl') });
    const effects = provider.effectsByAction();
    for (const id of approved) expect(effects.get(id), `effects of ${id}`).toBe(1);
    await store.close();
  }, 180_000);
});
