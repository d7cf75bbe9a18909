/**
 * The bus between ingest and the decider. In-process for the embedded default, Kafka when
 * distributed; both pass test/contract/bus.contract.ts.
 *
 * Guarantees every adapter gives: messages with the same key reach one handler of a group in
 * publish order; a message is never dropped — if its handler fails, the publisher learns
 * (in-process: publish rejects) or it is delivered again (Kafka: the offset is not committed).
 */
export interface BusMessage<T = unknown> {
  key: string;
  value: T;
  headers?: Record<string, string>;
}

export type PublishReceipt = { delivered: 'handled'; result: unknown } | { delivered: 'queued' };

/** Handles a batch of messages; returns one result per message, in order. */
export type BusHandler<T = unknown> = (messages: ReadonlyArray<BusMessage<T>>) => Promise<unknown[]>;

export interface BusSubscription {
  stop(): Promise<void>;
}

export interface Bus {
  readonly name: string;
  publish<T>(topic: string, messages: ReadonlyArray<BusMessage<T>>): Promise<PublishReceipt[]>;
  subscribe<T>(topic: string, group: string, handler: BusHandler<T>): Promise<BusSubscription>;
  close(): Promise<void>;
}

export const TOPICS = {
  detections: 'tourniquet.detections',
  commands: 'tourniquet.commands',
  deadLetters: 'tourniquet.dlq',
} as const;
