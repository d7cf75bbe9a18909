import { TourniquetError } from '../errors.ts';
import type { Bus, BusHandler, BusMessage, BusSubscription, PublishReceipt } from './port.ts';

/**
 * In-process bus for the embedded default. Publishing hands the batch to one subscriber per
 * group and resolves with its results once handled, so "accepted" means "decided and appended".
 * Per-key order holds because a publish awaits its handlers before resolving and each group
 * handles one batch at a time.
 */
export class InProcessBus implements Bus {
  readonly name = 'in-process';
  private readonly groups = new Map<string, Map<string, { handler: BusHandler; queue: Promise<unknown> }>>();
  private closed = false;

  async publish<T>(topic: string, messages: ReadonlyArray<BusMessage<T>>): Promise<PublishReceipt[]> {
    if (this.closed)
      throw new TourniquetError('BUS_UNAVAILABLE', 'bus is closed', { retriable: true, status: 503 });
    const groups = this.groups.get(topic);
    if (!groups || groups.size === 0) {
      throw new TourniquetError(
        'BUS_UNAVAILABLE',
        `no subscriber on topic ${topic}: nothing would handle these messages`,
        {
          retriable: true,
          status: 503,
        },
      );
    }
    let receipts: PublishReceipt[] = [];
    const runs: Promise<unknown[]>[] = [];
    for (const g of groups.values()) {
      const run = g.queue.then(() => g.handler(messages as ReadonlyArray<BusMessage>));
      g.queue = run.catch(() => undefined);
      runs.push(run);
    }
    const results = await Promise.all(runs);
    receipts = messages.map((_, i) => ({ delivered: 'handled', result: results[0]?.[i] }));
    return receipts;
  }

  async subscribe<T>(topic: string, group: string, handler: BusHandler<T>): Promise<BusSubscription> {
    let groups = this.groups.get(topic);
    if (!groups) {
      groups = new Map();
      this.groups.set(topic, groups);
    }
    if (groups.has(group)) {
      throw new TourniquetError('CONFLICT', `group ${group} already subscribed to ${topic} in this process`, {
        status: 409,
      });
    }
    groups.set(group, { handler: handler as BusHandler, queue: Promise.resolve() });
    return {
      stop: async () => {
        const g = groups.get(group);
        groups.delete(group);
        await g?.queue;
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const groups of this.groups.values()) await Promise.all([...groups.values()].map((g) => g.queue));
    this.groups.clear();
  }
}
