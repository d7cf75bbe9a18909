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

function rememberedJsonText(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null ? texts.get(value) : undefined;
}

/**
 * A JSON value kept as its text, parsed only when something reads it (`value`, or JSON.stringify and
 * canonicalJson through `toJSON`). The decider's consumer keeps a detection's `raw` record so: nothing
 * on the decision path reads it, and the event store stores and digests the text as it came.
 * Checked text is vouched for (`checkedJsonText` in schemas/text.ts): the limits check counts its size
 * without scanning it again; an unvouched one is scanned when checked.
 */
export class JsonText {
  readonly text: string;
  private parsed: unknown;
  private isParsed = false;

  constructor(text: string) {
    this.text = text;
  }

  get value(): unknown {
    if (!this.isParsed) {
      this.parsed = JSON.parse(this.text);
      this.isParsed = true;
    }
    return this.parsed;
  }

  toJSON(): unknown {
    return this.value;
  }
}

/** The JSON text of a value when it is known without serializing (kept or remembered), else undefined. */
export function knownJsonText(value: unknown): string | undefined {
  return value instanceof JsonText ? value.text : rememberedJsonText(value);
}

/** Checked JsonTexts and their size in UTF-8 bytes. */
const vouched = new WeakMap<JsonText, number>();

/** A JsonText over text just checked against the limits, `bytes` long (only schemas/text.ts calls this). */
export function vouchedJsonText(text: string, bytes: number): JsonText {
  const t = new JsonText(text);
  vouched.set(t, bytes);
  return t;
}

/** The UTF-8 size of a checked JsonText; undefined for one never checked. */
export function vouchedBytes(t: JsonText): number | undefined {
  return vouched.get(t);
}
