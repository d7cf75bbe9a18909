/**
 * The JSON text a parsed value came from, remembered by object identity so that a record ingest
 * parsed from one Kafka message is not serialized again when its detection carries it as `raw` (the
 * Avro `raw` field is JSON text). Only for values nothing mutates after parsing (normalizers read their
 * input, never write it); a value without a remembered text is serialized as usual.
 */
const texts = new WeakMap<object, string>();

export function rememberJsonText(value: unknown, text: string): void {
  if (typeof value === 'object' && value !== null) texts.set(value, text);
}

export function rememberedJsonText(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? texts.get(value) : undefined;
}
