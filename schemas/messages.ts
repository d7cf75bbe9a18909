import type { NormalizedDetection } from './detection.ts';

/**
 * A detection as it travels on the bus (`tourniquet.detections`, keyed by identity): stamped with
 * the time ingest accepted it. Ingest publishes it, the decider consumes it; the Kafka adapter
 * carries it in Avro (schemas/detection.avsc).
 */
export interface DetectionMessage {
  at: string;
  detection: NormalizedDetection;
}

/**
 * What the decider answers for a DetectionMessage (in-process bus: back to the publisher).
 * `conflict`: refused as a conflicting duplicate (only when batches are not refused whole).
 */
export type DetectionOutcome = { status: 'accepted' | 'duplicate' | 'conflict'; eventId?: string };
