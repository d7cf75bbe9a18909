import { createHmac } from 'node:crypto';

/**
 * The generic webhook's signature: `X-Tourniquet-Signature: v1=<hex HMAC-SHA256(secret,
 * timestamp + "." + raw body)>` with `X-Tourniquet-Timestamp: <unix seconds>`.
 */
export function webhookSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}
