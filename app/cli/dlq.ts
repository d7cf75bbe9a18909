import { redriveDeadLetters } from '../../platform/bus/dlq-redrive.ts';
import { createKafka } from '../../platform/bus/kafka.ts';
import { TourniquetError } from '../../platform/errors.ts';
import { loadServeConfig } from '../serve.ts';

/**
 * `tourniquet dlq redrive`: the chosen dead letters back to their source topics (platform/bus/
 * dlq-redrive.ts). Brokers and the DLQ topic come from the same configuration `serve` reads
 * (--config, TOURNIQUET_* variables). Prints the report as JSON.
 */
export async function runDlqRedrive(
  o: {
    config?: string;
    topic?: string;
    reason?: string[];
    sourceTopic?: string[];
    since?: string;
    dryRun?: boolean;
  },
  out: NodeJS.WritableStream,
): Promise<number> {
  const config = loadServeConfig(o.config ? { file: o.config } : {});
  let sinceMs: number | undefined;
  if (o.since !== undefined) {
    sinceMs = Date.parse(o.since);
    if (Number.isNaN(sinceMs))
      throw new TourniquetError('VALIDATION_FAILED', `--since ${o.since} is not a date (ISO 8601)`, {
        status: 400,
      });
  }
  const kafka = createKafka({
    brokers: config.kafka.brokers,
    clientId: `${config.kafka.clientId}-dlq-redrive`,
  });
  const report = await redriveDeadLetters(kafka, {
    dlqTopic: o.topic ?? config.topics.deadLetters,
    ...(o.reason?.length ? { reasons: o.reason } : {}),
    ...(o.sourceTopic?.length ? { sourceTopics: o.sourceTopic } : {}),
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    dryRun: Boolean(o.dryRun),
  });
  out.write(`${JSON.stringify(report, null, 2)}\n`);
  return 0;
}
