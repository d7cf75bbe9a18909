import { type Bus, TOPICS } from '../../platform/bus/port.ts';
import { identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import type { IngestGateway, IngestReceipt } from '../../schemas/gateways.ts';
import type { DetectionMessage, DetectionOutcome } from '../../schemas/messages.ts';

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
    const at = this.now().toISOString();
    const receipts = await this.bus.publish<DetectionMessage>(
      TOPICS.detections,
      detections.map((detection) => ({ key: identityKey(detection.identity), value: { at, detection } })),
    );
    return receipts.map((r, i) => {
      const d = detections[i]!;
      if (r.delivered === 'queued') return { id: d.id, source: d.source, status: 'queued' };
      const outcome = r.result as DetectionOutcome;
      // an in-process decider refuses a batch with a conflicting duplicate whole (wholeBatches)
      if (outcome.status === 'conflict')
        throw new Error(`detection ${d.source}:${d.id} refused as a conflict`);
      return {
        id: d.id,
        source: d.source,
        status: outcome.status,
        ...(outcome.eventId ? { eventId: outcome.eventId } : {}),
      };
    });
  }
}
