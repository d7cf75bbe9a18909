import { afterAll, describe, expect, it } from 'vitest';
import { registerBusStats, setConsumerLag } from '../platform/metrics.ts';
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

  it('serves the Kafka bus counts, read at each scrape', async () => {
    const { url } = await started;
    const stats = { published: 0, producersRetired: 0, consumerRestarts: 0 };
    const unregister = registerBusStats('ingest-test', () => stats);
    stats.published = 120;
    stats.producersRetired = 1;
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('# TYPE tourniquet_kafka_bus_total counter');
    expect(text).toMatch(/tourniquet_kafka_bus_total\{service="ingest-test",what="published"\} 120/);
    expect(text).toMatch(/tourniquet_kafka_bus_total\{service="ingest-test",what="producersRetired"\} 1/);
    stats.published = 130; // a later scrape sees the new count
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(
      /tourniquet_kafka_bus_total\{service="ingest-test",what="published"\} 130/,
    );
    unregister();
    expect(await (await fetch(`${url}/metrics`)).text()).not.toContain('service="ingest-test"');
  });

  it('answers health and refuses other paths', async () => {
    const { url } = await started;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const other = await fetch(`${url}/v1/cases`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
