import type { NewEvent } from '../../schemas/events.ts';
import '../../schemas/text.ts';
import { TourniquetError } from '../errors.ts';

/**
 * The store's last line of defence for "hash exactly what is stored": the envelope's text fields go
 * to the database (or the wire) as UTF-8, so a string that is not well-formed Unicode would be stored
 * as something else (U+FFFD) than what the hash chain covers. Input validation (schemas/text.ts)
 * refuses such text at every entry point; this refuses it here too, before the transaction, for
 * events built by code. `data` needs no check: it is stored as JSON text, which escapes lone surrogates.
 */
export function assertStorable(e: NewEvent, stream: string): void {
  if (e.stream !== stream) {
    throw new TourniquetError(
      'VALIDATION_FAILED',
      `event ${e.id} names stream ${e.stream}, appended to ${stream}`,
      {
        status: 400,
      },
    );
  }
  const fields: Array<[string, string | null]> = [
    ['id', e.id],
    ['stream', e.stream],
    ['type', e.type],
    ['occurredAt', e.occurredAt],
    ['causationId', e.causationId],
    ['correlationId', e.correlationId],
  ];
  for (const [name, v] of fields) {
    if (v !== null && !v.isWellFormed()) {
      throw new TourniquetError(
        'VALIDATION_FAILED',
        `event ${JSON.stringify(e.id)}: ${name} is not well-formed Unicode and cannot be stored as it is hashed`,
        { status: 400, details: { issues: [{ path: name, message: 'is not well-formed Unicode' }] } },
      );
    }
  }
}
