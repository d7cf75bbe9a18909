import { type Bus, type BusMessage, TOPICS } from '../../platform/bus/port.ts';
import { identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import type { IngestGateway, IngestReceipt } from '../../schemas/gateways.ts';
import type { DetectionMessage, DetectionOutcome } from '../../schemas/messages.ts';

const messagesOf = (detections: readonly NormalizedDetection[], at: string): BusMessage<DetectionMessage>[] =>
  detections.map((detection) => ({ key: identityKey(detection.identity), value: { at, detection } }));

/** A receipt per detection from the decider's outcome for it. */
function receiptOf(d: NormalizedDetection, outcome: DetectionOutcome): IngestReceipt {
  // a decider handling whole batches refuses a batch with a conflicting duplicate whole
  if (outcome.status === 'conflict') throw new Error(`detection ${d.source}:${d.id} refused as a conflict`);
  return {
    id: d.id,
    source: d.source,
    status: outcome.status,
    ...(outcome.eventId ? { eventId: outcome.eventId } : {}),
  };
}

/**
 * Ingest's way onto the bus: one message per detection, keyed by identity so one decider owns
 * each identity. With the in-process bus the receipt says whether it was appended or a duplicate;
 * with Kafka it says the broker has it.
 */
export class BusIngestGateway implements IngestGateway {
  private readonly bus: Bus;
  private readonly now: () => Date;

  constructor(bus: Bus, now: () => Date = () => new Date()) {
    this.bus = bus;
    this.now = now;
  }

  async accept(detections: readonly NormalizedDetection[]): Promise<IngestReceipt[]> {
    const receipts = await this.bus.publish<DetectionMessage>(
      TOPICS.detections,
      messagesOf(detections, this.now().toISOString()),
    );
    return receipts.map((r, i) => {
      const d = detections[i]!;
      if (r.delivered === 'queued') return { id: d.id, source: d.source, status: 'queued' };
      return receiptOf(d, r.result as DetectionOutcome);
    });
  }
}

/** Appends one request's detections durably (the embedded decider's handleDetections). */
export type DetectionHandler = (
  messages: ReadonlyArray<BusMessage<DetectionMessage>>,
) => Promise<DetectionOutcome[]>;

/**
 * Ingest straight into the store's writer, in the same process: requests are handed over as they
 * arrive, concurrently, so that the store can write the requests arriving together in one commit
 * (group commit). A bus would hand them over one at a time, each waiting for the previous one's
 * fsync. The receipt comes once the detections are durably appended (or found to be duplicates).
 */
export class DirectIngestGateway implements IngestGateway {
  private readonly handle: DetectionHandler;
  private readonly now: () => Date;

  constructor(handle: DetectionHandler, now: () => Date = () => new Date()) {
    this.handle = handle;
    this.now = now;
  }

  async accept(detections: readonly NormalizedDetection[]): Promise<IngestReceipt[]> {
    const outcomes = await this.handle(messagesOf(detections, this.now().toISOString()));
    return detections.map((d, i) => receiptOf(d, outcomes[i]!));
  }
}
