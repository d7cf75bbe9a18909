import type { DeciderInput } from './decider-input.ts';
import type { NormalizedDetection } from './detection.ts';
import type { NewEvent } from './events.ts';

/**
 * How the HTTP API reaches the services behind it. Embedded mode wires them in-process;
 * distributed mode puts the bus (Kafka) in between. Both throw the typed errors of
 * platform/errors.ts (ValidationError 400, NotFoundError 404, ApprovalError 409, …).
 */
export interface IngestGateway {
  /**
   * Accepts validated detections; resolves only once each is durably recorded (embedded: the
   * DetectionReceived event appended; distributed: acknowledged by the broker).
   */
  accept(detections: readonly NormalizedDetection[]): Promise<IngestReceipt[]>;
}

export interface IngestReceipt {
  id: string;
  source: string;
  status: 'accepted' | 'duplicate' | 'queued';
  /** DetectionReceived event id when known (embedded). */
  eventId?: string;
}

export interface DeciderGateway {
  /** Decides a human command (approve, reject, verdict, propose) and appends the result. */
  submit(input: DeciderInput): Promise<{ events: NewEvent[] }>;
}

export interface AutomationGateway {
  pause(by: string, reason: string): Promise<NewEvent>;
  resume(by: string, reason: string): Promise<NewEvent>;
  paused(): boolean;
  /** An analyst ends a storm's hold on its rule (StormResolved, reason analyst). */
  resolveStorm(stormId: string, ruleId: string, by: string, comment?: string): Promise<NewEvent>;
}
