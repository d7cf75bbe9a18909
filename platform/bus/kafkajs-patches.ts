/**
 * A fix applied to kafkajs 2.2.4 (unmaintained) at load time.
 *
 * RequestQueue.scheduleCheckPendingRequests computes `throttledUntil - Date.now()` with
 * `throttledUntil = -1` when nothing is throttled, and with nothing pending schedules a timer with
 * that negative delay: Node runs it after 1 ms, it checks the empty queue and schedules itself again.
 * Every connection that has answered a request spins that loop for as long as it lives (and Node 24
 * warns `TimeoutNegativeWarning`). Upstream: tulios/kafkajs#1704, #1751 (fix proposed in #1768).
 * With nothing pending and no throttle there is nothing to check: a request pushed later schedules
 * its own check, and a throttle still gets its timer.
 */
import { createRequire } from 'node:module';

interface RequestQueueLike {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const require = createRequire(import.meta.url);
const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as {
  prototype: RequestQueueLike & { __tourniquetPatched?: boolean };
};

const proto = RequestQueue.prototype;
if (!proto.__tourniquetPatched) {
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function (this: RequestQueueLike) {
    if (this.pending.length === 0 && this.throttledUntil - Date.now() <= 0) return;
    original.call(this);
  };
  proto.__tourniquetPatched = true;
}

/** Whether the patch above is in place (for a test to assert). */
export function requestQueuePatched(): boolean {
  return proto.__tourniquetPatched === true;
}
