import { type Logger, pino } from 'pino';

/** Structured JSON logs on stderr (stdout stays for command output such as --json documents). */
export function createLogger(
  level = process.env.TOURNIQUET_LOG_LEVEL ?? 'warn',
  name = 'tourniquet',
): Logger {
  return pino({ name, level }, pino.destination(2));
}
