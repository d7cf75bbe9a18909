import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { requestQueuePatched } from './kafkajs-patches.ts';
import './kafka.ts';

const require = createRequire(import.meta.url);
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as {
  prototype: { scheduleCheckPendingRequests(this: unknown): void };
};

interface FakeQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
}
const fake = (pending: unknown[], throttledUntil: number): FakeQueue => ({
  pending,
  throttledUntil,
  throttleCheckTimeoutId: null,
  checkPendingRequests() {},
});

describe('kafkajs request queue patch (kafkajs#1704: a 1 ms timer loop per idle connection)', () => {
  it('is applied by loading the Kafka bus', () => {
    expect(requestQueuePatched()).toBe(true);
  });

  it('schedules nothing for an idle, unthrottled queue', () => {
    const q = fake([], -1);
    RequestQueue.prototype.scheduleCheckPendingRequests.call(q);
    expect(q.throttleCheckTimeoutId).toBeNull();
  });

  it('still schedules a check when requests wait, or when a throttle is in force', () => {
    for (const q of [fake([{}], -1), fake([], Date.now() + 60_000)]) {
      RequestQueue.prototype.scheduleCheckPendingRequests.call(q);
      expect(q.throttleCheckTimeoutId).not.toBeNull();
      clearTimeout(q.throttleCheckTimeoutId!);
    }
  });
});
