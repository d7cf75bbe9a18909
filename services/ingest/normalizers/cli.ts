/**
 * `tourniquet normalize [--format auto|…] [--set-keys FILE] [FILE]`: reads FILE (or stdin), writes one
 * normalized detection per line (NDJSON) on stdout and one `{"index","reason"}` line per rejected record
 * on stderr. Exit code 0 when every record normalized, 2 when any was rejected, 1 when the input or the
 * key file cannot be read or the format name is unknown.
 */
import { readFile } from 'node:fs/promises';
import type { JSONWebKeySet } from 'jose';
import { TourniquetError } from '../../../platform/errors.ts';
import { FORMATS, type FormatName, isFormatName, normalize } from './index.ts';
import { parseRecordsIndexed } from './records.ts';

export interface RunNormalizeOptions {
  format: string;
  file?: string;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  setKeysFile?: string;
}

export async function runNormalize(opts: RunNormalizeOptions): Promise<number> {
  const { stdout, stderr } = opts;
  const format = opts.format;
  if (format !== 'auto' && !isFormatName(format)) {
    await write(
      stderr,
      `tourniquet normalize: unknown format '${format}'; expected one of auto, ${FORMATS.join(', ')}\n`,
    );
    return 1;
  }

  let setKeys: JSONWebKeySet | undefined;
  if (opts.setKeysFile !== undefined) {
    try {
      setKeys = parseJwks(await readFile(opts.setKeysFile, 'utf8'));
    } catch (e) {
      await write(
        stderr,
        `tourniquet normalize: cannot use --set-keys ${opts.setKeysFile}: ${(e as Error).message}\n`,
      );
      return 1;
    }
  }

  let text: string;
  try {
    text =
      opts.file !== undefined && opts.file !== '-'
        ? await readFile(opts.file, 'utf8')
        : await readAll(opts.stdin);
  } catch (e) {
    await write(
      stderr,
      `tourniquet normalize: cannot read ${opts.file ?? 'stdin'}: ${(e as Error).message}\n`,
    );
    return 1;
  }

  const { records, errors } = parseRecordsIndexed(text);
  // Records and parse errors interleave in input order.
  const items = [
    ...records.map((r) => ({ index: r.index, record: r.record, error: undefined as string | undefined })),
    ...errors.map((e) => ({
      index: e.index,
      record: undefined as unknown,
      error: e.reason as string | undefined,
    })),
  ].sort((a, b) => a.index - b.index);

  let rejected = 0;
  for (const item of items) {
    if (item.error !== undefined) {
      rejected++;
      await write(stderr, `${JSON.stringify({ index: item.index, reason: item.error })}\n`);
      continue;
    }
    try {
      const detection = await normalize(item.record, {
        format: format as FormatName | 'auto',
        ...(setKeys !== undefined ? { setKeys } : {}),
      });
      await write(stdout, `${JSON.stringify(detection)}\n`);
    } catch (e) {
      rejected++;
      const reason =
        e instanceof TourniquetError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
      await write(stderr, `${JSON.stringify({ index: item.index, reason })}\n`);
    }
  }
  return rejected === 0 ? 0 : 2;
}

function parseJwks(text: string): JSONWebKeySet {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || !Array.isArray((v as { keys?: unknown }).keys))
    throw new Error('not a JWKS: expected an object with a "keys" array');
  return v as JSONWebKeySet;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** Honours backpressure so a large batch does not buffer entirely in memory. */
function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(text, (err) => {
      if (err) reject(err);
    });
    if (ok) resolve();
    else stream.once('drain', () => resolve());
  });
}
