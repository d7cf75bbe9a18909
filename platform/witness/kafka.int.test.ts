import { randomUUID } from 'node:crypto';
import { witnessContract } from '../../test/contract/witness.contract.ts';
import { ensureKafka } from '../../test/support/kafka.ts';
import { KafkaWitness } from './kafka.ts';

const topic = `tq-witness-${randomUUID().slice(0, 8)}`;
let brokers: string[] | undefined;

witnessContract('Kafka compacted topic', {
  keeps: 'latest',
  newWitness: async () => {
    brokers ??= [await ensureKafka()];
    return new KafkaWitness({ brokers, topic });
  },
});
