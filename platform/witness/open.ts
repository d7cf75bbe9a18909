import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { TourniquetError } from '../errors.ts';
import { FileWitness } from './file.ts';
import { HttpWitness } from './http.ts';
import { KafkaWitness } from './kafka.ts';
import type { Witness } from './port.ts';

/**
 * A witness from its spec (`--anchor`, `integrity.anchor`, TOURNIQUET_ANCHOR):
 *  - `file:<path>` or a path: the append-only file witness;
 *  - `http://…` / `https://…`: the HTTP witness (headers from TOURNIQUET_ANCHOR_HEADERS, JSON);
 *  - `kafka:<topic>`: the Kafka compacted topic witness on `brokers`.
 */
export function openWitness(
  spec: string,
  opts: { brokers?: string[]; headers?: Record<string, string>; log?: Logger } = {},
): Witness {
  if (/^https?:\/\//i.test(spec)) {
    return new HttpWitness({ url: spec, ...(opts.headers ? { headers: opts.headers } : {}) });
  }
  if (spec.startsWith('kafka:')) {
    const topic = spec.slice('kafka:'.length);
    if (!topic) throw invalid(spec, 'kafka:<topic> needs a topic');
    if (!opts.brokers || opts.brokers.length === 0) throw invalid(spec, 'a Kafka witness needs brokers');
    return new KafkaWitness({ brokers: opts.brokers, topic, ...(opts.log ? { log: opts.log } : {}) });
  }
  const path = spec.startsWith('file:') ? spec.slice('file:'.length) : spec;
  if (!path || /^[a-z][a-z0-9+.-]*:\/\//i.test(spec))
    throw invalid(spec, 'use file:<path>, http(s)://… or kafka:<topic>');
  return new FileWitness(resolve(path));
}

function invalid(spec: string, why: string): TourniquetError {
  return new TourniquetError('CONFIG_INVALID', `anchor witness "${spec}": ${why}`, { status: 400 });
}
