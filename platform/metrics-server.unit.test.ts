import { afterAll, describe, expect, it } from 'vitest';
import { setConsumerLag } from '../services/projector/metrics.ts';
import { startMetricsServer } from './metrics-server.ts';

describe('metrics listener for services without the API', () => {
  const started = startMetricsServer('127.0.0.1', 0);
  afterAll(async () => (await started).close());

  it('serves Prometheus text with the consumer lag a Kafka consumer reported', async () => {
    const { url } = await started;
    setConsumerLag('tourniquet.decider', 'tourniquet.detections', 3, 42);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(
      /tourniquet_consumer_lag_messages\{[^}]*group="tourniquet.decider"[^}]*partition="3"[^}]*\} 42/,
    );
  });

  it('answers health and refuses other paths', async () => {
    const { url } = await started;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const other = await fetch(`${url}/v1/cases`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
