/**
 * Re-driving dead letters: once the cause is fixed (a normalizer, a schema, a producer), the dead
 * letters it caused go back to the topic they came from, to be read again. The DLQ keeps the whole
 * original value and headers next to its own `x-dlq-*` headers (platform/bus/kafka.ts), so a
 * re-driven message is the original message again, plus `x-redriven-from` naming the dead letter.
 * Detection ids are the decider's dedupe key: re-driving something that did get through later is
 * harmless, and a letter that fails again is dead-lettered again with the new reason.
 *
 * The DLQ is read from its start to the end it had when the run began, with a throw-away consumer
 * group (nothing committed, nothing left behind); filters pick which letters go back.
 */
import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { TourniquetError } from '../errors.ts';
import { DLQ_HEADERS, headerString } from './kafka.ts';

export interface RedriveOptions {
  dlqTopic: string;
  /** Only letters with one of these `x-dlq-reason` codes (default: all). */
  reasons?: readonly string[];
  /** Only letters from these source topics (default: all). */
  sourceTopics?: readonly string[];
  /** Only letters dead-lettered at or after this time (`x-dlq-at`). */
  sinceMs?: number;
  /** Count what would go back, produce nothing. */
  dryRun?: boolean;
  /** Give up reading the DLQ to its end after this long (default 60 s). */
  timeoutMs?: number;
  log?: Logger;
}

export interface RedriveReport {
  dlqTopic: string;
  dryRun: boolean;
  read: number;
  redriven: number;
  /** Per source topic: letters sent back (or, dry run, that would be). */
  bySourceTopic: Record<string, number>;
  skipped: {
    /** Left out by --reason / --source-topic / --since. */
    filtered: number;
    /** The DLQ holds only the first part of the value: sending it back would send a different message. */
    truncated: number;
    /** No `x-dlq-source-topic` header: not a Tourniquet dead letter. */
    noSource: number;
  };
}

export interface TopicMessage {
  partition: number;
  message: KafkaMessage;
}

/**
 * Reads a topic from its start to the end it has now (per partition), calling `onMessage` in offset
 * order per partition, with a throw-away group that commits nothing and is deleted afterwards.
 */
export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  onMessage: (m: TopicMessage) => void,
  timeoutMs = 60_000,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `tourniquet.read-to-end.${randomUUID()}`;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const pending = new Map(
      offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => [o.partition, BigInt(o.high)]),
    );
    if (pending.size === 0) return;
    const consumer = kafka.consumer({ groupId, maxBytesPerPartition: 16 * 1024 * 1024 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      let finish: () => void = () => undefined;
      const done = new Promise<void>((r) => {
        finish = r;
      });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const end = pending.get(partition);
          if (end === undefined || BigInt(message.offset) >= end) return;
          onMessage({ partition, message });
          if (BigInt(message.offset) + 1n >= end) {
            pending.delete(partition);
            if (pending.size === 0) finish();
          }
        },
      });
      const timer = setTimeout(finish, timeoutMs);
      await done;
      clearTimeout(timer);
    } finally {
      await consumer.disconnect();
    }
    if (pending.size > 0) {
      throw new TourniquetError(
        'BUS_UNAVAILABLE',
        `${topic}: partitions ${[...pending.keys()].join(', ')} not read to their end in ${timeoutMs} ms`,
        { retriable: true, status: 503 },
      );
    }
  } finally {
    // Tidying only: a group that never joined (empty topic) has nothing to delete, and one that could
    // not be deleted expires with the broker's offsets retention; no offset was ever committed to it.
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

const header = (headers: IHeaders | undefined, name: string) => headerString(headers?.[name]);

const DLQ_NAMES = new Set<string>(Object.values(DLQ_HEADERS));

/** Sends the chosen dead letters back to their source topics (keys, values and original headers kept). */
export async function redriveDeadLetters(kafka: Kafka, opts: RedriveOptions): Promise<RedriveReport> {
  const report: RedriveReport = {
    dlqTopic: opts.dlqTopic,
    dryRun: Boolean(opts.dryRun),
    read: 0,
    redriven: 0,
    bySourceTopic: {},
    skipped: { filtered: 0, truncated: 0, noSource: 0 },
  };
  const outgoing = new Map<string, Array<{ key: Buffer | null; value: Buffer | null; headers: IHeaders }>>();
  await readTopicToEnd(
    kafka,
    opts.dlqTopic,
    ({ partition, message }) => {
      report.read += 1;
      const source = header(message.headers, DLQ_HEADERS.sourceTopic);
      if (!source) {
        report.skipped.noSource += 1;
        return;
      }
      const reason = header(message.headers, DLQ_HEADERS.reason) ?? '';
      const at = Date.parse(header(message.headers, DLQ_HEADERS.at) ?? '');
      if (
        (opts.reasons && !opts.reasons.includes(reason)) ||
        (opts.sourceTopics && !opts.sourceTopics.includes(source)) ||
        (opts.sinceMs !== undefined && !(at >= opts.sinceMs))
      ) {
        report.skipped.filtered += 1;
        return;
      }
      if (header(message.headers, DLQ_HEADERS.truncated) !== undefined) {
        report.skipped.truncated += 1;
        opts.log?.warn(
          { partition, offset: message.offset, sourceTopic: source },
          'dead letter holds a truncated value: not sent back',
        );
        return;
      }
      const headers: IHeaders = {};
      for (const [k, v] of Object.entries(message.headers ?? {}))
        if (!DLQ_NAMES.has(k) && v !== undefined) headers[k] = v;
      headers['x-redriven-from'] = `${opts.dlqTopic}/${partition}/${message.offset}`;
      const list = outgoing.get(source) ?? [];
      list.push({ key: message.key, value: message.value, headers });
      outgoing.set(source, list);
      report.bySourceTopic[source] = (report.bySourceTopic[source] ?? 0) + 1;
      report.redriven += 1;
    },
    opts.timeoutMs,
  );
  if (report.dryRun || report.redriven === 0) return report;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (const [topic, messages] of outgoing) {
      for (let i = 0; i < messages.length; i += 500) {
        await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 500) });
      }
    }
  } finally {
    await producer.disconnect();
  }
  return report;
}
