import type { JSONWebKeySet } from 'jose';
import type { NormalizedDetection } from '../../../schemas/detection.ts';
import type { Obj } from './util.ts';

/**
 * One source format. Each format's file exports one of these; index.ts lists them in one table
 * (NORMALIZERS), which is the only place a format's name is registered.
 */
export interface Normalizer<N extends string = string> {
  /** The format's name (`--format`, the `format` of a raw topic, `details.format` of a rejection). */
  readonly name: N;
  /** Shape test on a JSON object: looks at fields only this format has. */
  detect(record: Obj): boolean;
  /** Shape test on a text record, for formats that also arrive as text (a compact JWS). */
  detectText?(record: string): boolean;
  /** One record → a detection (validated again by the caller). Text formats get any record. */
  normalize(record: Obj | unknown, opts: SetOptions): NormalizedDetection | Promise<NormalizedDetection>;
}

/** Options of the text formats (Security Event Tokens): the keys, issuer and audience they must carry. */
export interface SetOptions {
  setKeys?: JSONWebKeySet;
  setIssuer?: string;
  setAudience?: string;
}
