import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { NormalizedDetection } from '../../../schemas/detection.ts';
import { fixture } from '../../../test/support/normalizer-fixtures.ts';
import { runNormalize } from './cli.ts';
import { parseRecords } from './records.ts';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

async function run(input: string, opts: { format?: string; file?: string; setKeysFile?: string } = {}) {
  const out = sink();
  const err = sink();
  const code = await runNormalize({
    format: opts.format ?? 'auto',
    stdin: Readable.from([Buffer.from(input)]),
    stdout: out.stream,
    stderr: err.stream,
    ...(opts.file !== undefined ? { file: opts.file } : {}),
    ...(opts.setKeysFile !== undefined ? { setKeysFile: opts.setKeysFile } : {}),
  });
  const lines = (t: string) =>
    t
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, stdout: lines(out.text()), stderrText: err.text(), stderr: () => lines(err.text()) };
}

const okta = fixture('okta', 'user-deny-push.json');
const gd = fixture('guardduty', 'iam-user-console-login.json');
const gh = fixture('github_secret_scanning', 'created-pat-active.json');

describe('parseRecords', () => {
  it('reads one JSON value', () => {
    expect(parseRecords(JSON.stringify(okta, null, 2))).toEqual({ records: [okta], errors: [] });
  });

  it('reads a JSON array as its elements', () => {
    expect(parseRecords(JSON.stringify([okta, gd]))).toEqual({ records: [okta, gd], errors: [] });
  });

  it('reads NDJSON; a broken line in the middle is an error with its index and the others still flow', () => {
    const text = `${JSON.stringify(okta)}\n{"broken": \n\n${JSON.stringify(gd)}\r\n${JSON.stringify(gh)}\n`;
    const { records, errors } = parseRecords(text);
    expect(records).toEqual([okta, gd, gh]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.index).toBe(1);
    expect(errors[0]!.reason).toMatch(/^line 2: invalid JSON/);
  });

  it('empty input is no records', () => {
    expect(parseRecords('  \n\n')).toEqual({ records: [], errors: [] });
  });
});

describe('runNormalize', () => {
  it('exit 0: every record normalized, NDJSON on stdout, nothing on stderr', async () => {
    const r = await run(`${JSON.stringify(okta)}\n${JSON.stringify(gd)}\n`);
    expect(r.code).toBe(0);
    expect(r.stderrText).toBe('');
    expect(r.stdout).toHaveLength(2);
    for (const d of r.stdout) NormalizedDetection.parse(d);
    expect(r.stdout.map((d) => d.source)).toEqual(['okta', 'aws_guardduty']);
  });

  it('exit 2: rejected and unparseable records go to stderr as {index, reason}; the rest still flow', async () => {
    const noIdentity = { ...(okta as object), actor: { id: 'x', type: 'SystemPrincipal' }, target: null };
    const input = [
      JSON.stringify(okta),
      '{not json',
      JSON.stringify(noIdentity),
      JSON.stringify({ hello: 1 }),
      JSON.stringify(gh),
    ].join('\n');
    const r = await run(input);
    expect(r.code).toBe(2);
    expect(r.stdout.map((d) => d.id)).toEqual([
      '9a1c4e10-2193-11ef-8d1f-4bb2b1e3c8a1',
      'octo-org/payments-service/secret-scanning/42',
    ]);
    const errs = r.stderr();
    expect(errs.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(errs[0]!.reason).toMatch(/^line 2: invalid JSON/);
    expect(errs[1]!.reason).toMatch(/^okta: missing identity/);
    expect(errs[2]!.reason).toMatch(/unrecognized record/);
  });

  it('reads a file, and a forced format applies to every record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-normalize-'));
    const file = join(dir, 'in.json');
    writeFileSync(file, JSON.stringify([okta, gd]));
    const r = await run('', { file, format: 'okta' });
    expect(r.code).toBe(2);
    expect(r.stdout).toHaveLength(1);
    expect(r.stderr()).toEqual([{ index: 1, reason: expect.stringMatching(/^okta: missing uuid/) }]);
  });

  it('exit 1: unknown format name, unreadable file, unusable key file', async () => {
    const bad = await run('{}', { format: 'syslog' });
    expect(bad.code).toBe(1);
    expect(bad.stderrText).toMatch(/unknown format 'syslog'; expected one of auto, ocsf, guardduty/);
    const missing = await run('', { file: '/nonexistent/tourniquet/input.json' });
    expect(missing.code).toBe(1);
    expect(missing.stderrText).toMatch(/cannot read \/nonexistent\/tourniquet\/input\.json/);
    const dir = mkdtempSync(join(tmpdir(), 'tq-keys-'));
    writeFileSync(join(dir, 'keys.json'), '{"not":"a jwks"}');
    const keys = await run('{}', { setKeysFile: join(dir, 'keys.json') });
    expect(keys.code).toBe(1);
    expect(keys.stderrText).toMatch(/cannot use --set-keys .*not a JWKS/);
  });

  it('--set-keys verifies SETs: a good one passes, a forged one is rejected', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const other = await generateKeyPair('ES256', { extractable: true });
    const dir = mkdtempSync(join(tmpdir(), 'tq-keys-'));
    const keysFile = join(dir, 'jwks.json');
    writeFileSync(
      keysFile,
      JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] }),
    );
    const claims = fixture('set', 'risc-credential-compromise-email.json') as Record<string, unknown>;
    const good = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(pair.privateKey);
    const forged = await new SignJWT({ ...claims, jti: 'x' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(other.privateKey);
    const r = await run(`${good}\n${forged}\n`, { setKeysFile: keysFile });
    expect(r.code).toBe(2);
    expect(r.stdout).toHaveLength(1);
    expect(r.stdout[0]!.evidence).toMatchObject({ signatureVerified: true });
    expect(r.stderr()).toEqual([
      { index: 1, reason: expect.stringMatching(/SET signature verification failed/) },
    ]);
  });

  it('empty input exits 0 with no output', async () => {
    const r = await run('');
    expect(r).toMatchObject({ code: 0, stdout: [], stderrText: '' });
  });
});
