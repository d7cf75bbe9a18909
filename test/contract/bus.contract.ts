import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus, BusHandler, BusMessage, BusSubscription } from '../../platform/bus/port.ts';

/**
 * What an adapter can do beyond the common contract. The suite is one; these flags choose which
 * side of a legitimate difference a test checks, never whether the guarantee holds.
 */
export interface BusCapabilities {
  /**
   * How a failing handler is made whole: 'publish-rejects' (in-process: the publisher learns and
   * publishes again) or 'redelivered' (Kafka: the offset is not committed and the batch comes again).
   */
  failure: 'publish-rejects' | 'redelivered';
  /** publish resolves with the handlers' results ('handled') rather than 'queued'. */
  publishAwaitsHandlers: boolean;
  /** Several members of one group (in several bus instances) split the messages between them. */
  sharedGroups: boolean;
  /** Messages published while no member of a group is subscribed are kept for it. */
  retainsWhileUnsubscribed: boolean;
}

export interface BusContractSetup {
  /** A fresh bus (the suite closes every bus it asked for). */
  newBus(): Promise<Bus>;
  /** A topic name unique to this test run. */
  topic(name: string): string;
  /** A group name unique to this test run. */
  group(name: string): string;
  /** Waits until a subscription is ready to receive (Kafka: joined with partitions). */
  settle?(subs: BusSubscription[]): Promise<void>;
  /** How long to wait for deliveries (default 20 s). */
  timeoutMs?: number;
}

interface Payload {
  key: string;
  seq: number;
}

async function waitFor(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records what a handler saw, per key, in order. */
class Recorder {
  readonly seen: Array<{ key: string; seq: number; member: string }> = [];
  handler(member = 'm1', fail?: (batch: ReadonlyArray<BusMessage<Payload>>) => boolean): BusHandler<Payload> {
    return async (batch) => {
      if (fail?.(batch)) throw new Error(`handler ${member} fails on purpose`);
      for (const m of batch) this.seen.push({ key: m.key, seq: m.value.seq, member });
      return batch.map((m) => ({ ok: m.value.seq }));
    };
  }
  distinct(): Set<string> {
    return new Set(this.seen.map((s) => `${s.key}#${s.seq}`));
  }
  /** Sequence numbers per key in the order they were handled (duplicates from redelivery removed). */
  orderByKey(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    const dedupe = new Set<string>();
    for (const s of this.seen) {
      const id = `${s.key}#${s.seq}`;
      if (dedupe.has(id)) continue;
      dedupe.add(id);
      const list = out.get(s.key) ?? [];
      list.push(s.seq);
      out.set(s.key, list);
    }
    return out;
  }
}

function messages(keys: number, perKey: number, from = 0): BusMessage<Payload>[] {
  const out: BusMessage<Payload>[] = [];
  for (let seq = from; seq < from + perKey; seq++) {
    for (let k = 0; k < keys; k++)
      out.push({
        key: `identity-${k}`,
        value: { key: `identity-${k}`, seq },
        headers: { 'x-seq': String(seq) },
      });
  }
  return out;
}

/**
 * The Bus port contract (platform/bus/port.ts). Every adapter runs exactly this suite:
 * InProcessBus in platform/bus/in-process.unit.test.ts, KafkaBus in platform/bus/kafka.int.test.ts.
 */
export function busContract(
  adapter: string,
  caps: BusCapabilities,
  setup: () => Promise<BusContractSetup>,
): void {
  describe(`Bus contract: ${adapter}`, () => {
    let env: BusContractSetup;
    let buses: Bus[];
    let timeout: number;
    const newBus = async () => {
      const b = await env.newBus();
      buses.push(b);
      return b;
    };
    const settle = async (subs: BusSubscription[]) => {
      if (env.settle) await env.settle(subs);
    };

    /** Publishes in slices; in-process retries a rejected slice (that is how its publisher learns). */
    const publishAll = async (bus: Bus, topic: string, all: BusMessage<Payload>[], slice = 25) => {
      for (let i = 0; i < all.length; i += slice) {
        const part = all.slice(i, i + slice);
        for (let attempt = 0; ; attempt++) {
          try {
            await bus.publish(topic, part);
            break;
          } catch (err) {
            if (caps.failure !== 'publish-rejects' || attempt > 20) throw err;
          }
        }
      }
    };

    beforeEach(async () => {
      env = await setup();
      buses = [];
      timeout = env.timeoutMs ?? 20_000;
    });
    afterEach(async () => {
      await Promise.all(buses.map((b) => b.close()));
    });

    it('delivers messages with the same key to a group in publish order', async () => {
      const bus = await newBus();
      const topic = env.topic('order');
      const rec = new Recorder();
      const sub = await bus.subscribe<Payload>(topic, env.group('order'), rec.handler());
      await settle([sub]);
      const all = messages(8, 40);
      await publishAll(bus, topic, all, 17);
      await waitFor(() => rec.distinct().size === all.length, timeout, 'all messages');
      for (const [key, seqs] of rec.orderByKey()) {
        expect(seqs, `order of ${key}`).toEqual([...seqs].sort((a, b) => a - b));
        expect(seqs).toHaveLength(40);
      }
    });

    it('carries keys, values and headers unchanged', async () => {
      const bus = await newBus();
      const topic = env.topic('shape');
      const got: BusMessage<Payload>[] = [];
      const sub = await bus.subscribe<Payload>(topic, env.group('shape'), async (batch) => {
        got.push(...batch);
        return batch.map(() => null);
      });
      await settle([sub]);
      await publishAll(bus, topic, [
        { key: 'okta:alice@example.com', value: { key: 'k', seq: 7 }, headers: { 'x-trace': 'abc' } },
      ]);
      await waitFor(() => got.length === 1, timeout, 'the message');
      expect(got[0]!.key).toBe('okta:alice@example.com');
      expect(got[0]!.value).toEqual({ key: 'k', seq: 7 });
      expect(got[0]!.headers?.['x-trace']).toBe('abc');
    });

    it('delivers every message to exactly one handler of a group', async () => {
      const topic = env.topic('one-per-group');
      const group = env.group('one-per-group');
      const rec = new Recorder();
      const busA = await newBus();
      const subs = [await busA.subscribe<Payload>(topic, group, rec.handler('a'))];
      if (caps.sharedGroups) {
        const busB = await newBus();
        subs.push(await busB.subscribe<Payload>(topic, group, rec.handler('b')));
      } else {
        // a second member of the same group in the same bus is refused rather than double-delivering
        await expect(busA.subscribe<Payload>(topic, group, rec.handler('b'))).rejects.toThrow();
      }
      await settle(subs);
      const all = messages(24, 10);
      await publishAll(busA, topic, all);
      await waitFor(() => rec.seen.length >= all.length, timeout, 'all messages');
      await new Promise((r) => setTimeout(r, caps.publishAwaitsHandlers ? 0 : 500)); // room for stray duplicates
      expect(rec.seen).toHaveLength(all.length);
      expect(rec.distinct().size).toBe(all.length);
      if (caps.sharedGroups) {
        const members = new Set(rec.seen.map((s) => s.member));
        expect(members, 'both members got partitions and messages').toEqual(new Set(['a', 'b']));
        // one key, one member: a key never moves between members of a stable group
        const owner = new Map<string, string>();
        for (const s of rec.seen) {
          expect(owner.get(s.key) ?? s.member).toBe(s.member);
          owner.set(s.key, s.member);
        }
      }
    });

    it('gives every group all messages', async () => {
      const bus = await newBus();
      const topic = env.topic('two-groups');
      const a = new Recorder();
      const b = new Recorder();
      const subs = [
        await bus.subscribe<Payload>(topic, env.group('two-groups-a'), a.handler()),
        await bus.subscribe<Payload>(topic, env.group('two-groups-b'), b.handler()),
      ];
      await settle(subs);
      const all = messages(5, 20);
      await publishAll(bus, topic, all);
      await waitFor(
        () => a.distinct().size === all.length && b.distinct().size === all.length,
        timeout,
        'both groups',
      );
      expect(a.distinct()).toEqual(b.distinct());
    });

    it('loses nothing when the handler fails, and keeps per-key order', async () => {
      const bus = await newBus();
      const topic = env.topic('failing');
      const rec = new Recorder();
      let calls = 0;
      const failures: number[] = [];
      const sub = await bus.subscribe<Payload>(
        topic,
        env.group('failing'),
        rec.handler('m1', () => {
          calls += 1;
          // fail the 1st, 2nd and 5th calls
          const fail = calls === 1 || calls === 2 || calls === 5;
          if (fail) failures.push(calls);
          return fail;
        }),
      );
      await settle([sub]);
      const all = messages(6, 25);
      if (caps.failure === 'publish-rejects') {
        // the publisher learns about each failure, and publishing the same messages again makes it whole
        let rejected = 0;
        for (let i = 0; i < all.length; i += 10) {
          const part = all.slice(i, i + 10);
          for (;;) {
            try {
              const receipts = await bus.publish(topic, part);
              expect(receipts.every((r) => r.delivered === 'handled')).toBe(true);
              break;
            } catch {
              rejected += 1;
            }
          }
        }
        expect(rejected).toBe(3);
      } else {
        await publishAll(bus, topic, all, 10);
      }
      await waitFor(() => rec.distinct().size === all.length, timeout, 'every message after the failures');
      expect(failures.slice(0, 2)).toEqual([1, 2]);
      for (const [key, seqs] of rec.orderByKey())
        expect(seqs, `order of ${key}`).toEqual([...seqs].sort((a, b) => a - b));
    });

    it('resolves publish per its delivery model', async () => {
      const bus = await newBus();
      const topic = env.topic('receipts');
      const sub = await bus.subscribe<Payload>(topic, env.group('receipts'), async (batch) =>
        batch.map((m) => m.value.seq * 2),
      );
      await settle([sub]);
      const receipts = await bus.publish(topic, messages(1, 3));
      if (caps.publishAwaitsHandlers) {
        expect(receipts).toEqual([
          { delivered: 'handled', result: 0 },
          { delivered: 'handled', result: 2 },
          { delivered: 'handled', result: 4 },
        ]);
      } else {
        expect(receipts).toEqual([{ delivered: 'queued' }, { delivered: 'queued' }, { delivered: 'queued' }]);
      }
    });

    it('after a member stops, the group resumes where it left off', async () => {
      const topic = env.topic('resume');
      const group = env.group('resume');
      const first = new Recorder();
      const bus1 = await newBus();
      const sub1 = await bus1.subscribe<Payload>(topic, group, first.handler('first'));
      await settle([sub1]);
      await publishAll(bus1, topic, messages(4, 10));
      await waitFor(() => first.distinct().size === 40, timeout, 'first half');
      await sub1.stop();
      const second = new Recorder();
      if (caps.retainsWhileUnsubscribed) {
        await publishAll(bus1, topic, messages(4, 10, 10));
        const bus2 = await newBus();
        const sub2 = await bus2.subscribe<Payload>(topic, group, second.handler('second'));
        await settle([sub2]);
      } else {
        // nothing would keep them: publish refuses instead of dropping
        await expect(bus1.publish(topic, messages(4, 1, 10))).rejects.toThrow();
        const sub2 = await bus1.subscribe<Payload>(topic, group, second.handler('second'));
        await settle([sub2]);
        await publishAll(bus1, topic, messages(4, 10, 10));
      }
      await waitFor(() => second.distinct().size === 40, timeout, 'second half');
      await new Promise((r) => setTimeout(r, caps.publishAwaitsHandlers ? 0 : 300));
      // committed work is not handed out again
      expect([...second.distinct()].every((id) => Number(id.split('#')[1]) >= 10)).toBe(true);
      expect(first.distinct().size).toBe(40);
    });
  });
}
