/**
 * The one place a Kafka client library is chosen for the bus. Both adapters implement the same port
 * and pass the same contract suite and Kafka end-to-end tests; `serve` picks one from `kafka.client`
 * in the config file or TOURNIQUET_KAFKA_CLIENT (docs/kafka.md, "Kafka client").
 *
 * The default is the one that measured better end to end in `npm run bench -- kafka`, which runs
 * both side by side on the same broker (see docs/kafka.md for the numbers).
 */
import { KafkaBus } from './kafka.ts';
import type { KafkaBusBaseOptions, KafkaClientBus } from './kafka-common.ts';
import { PlatformaticKafkaBus } from './platformatic.ts';

export const KAFKA_CLIENTS = ['kafkajs', 'platformatic'] as const;
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number];

export const DEFAULT_KAFKA_CLIENT: KafkaClientName = 'platformatic';

const FACTORIES: Record<KafkaClientName, (opts: KafkaBusBaseOptions) => KafkaClientBus> = {
  kafkajs: (opts) => new KafkaBus(opts),
  platformatic: (opts) => new PlatformaticKafkaBus(opts),
};

/** A Kafka bus on the named client library. */
export function createKafkaBus(client: KafkaClientName, opts: KafkaBusBaseOptions): KafkaClientBus {
  return FACTORIES[client](opts);
}
