import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { TourniquetError } from '../../../platform/errors.ts';
import { fixture } from '../../../test/support/normalizer-fixtures.ts';
import { detectFormat, normalize } from './index.ts';
import { parseRecords } from './records.ts';

const CAEP_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const RISC_COMPROMISE = 'https://schemas.openid.net/secevent/risc/event-type/credential-compromise';

let jwks: JSONWebKeySet;
let otherJwks: JSONWebKeySet;
let signingKey: CryptoKey;

async function sign(claims: JWTPayload, key: CryptoKey = signingKey, kid = 'k1'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, typ: 'secevent+jwt' }).sign(key);
}

async function rejected(p: Promise<unknown>): Promise<TourniquetError> {
  const e = await p.then(
    () => {
      throw new Error('expected rejection');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(TourniquetError);
  expect((e as TourniquetError).code).toBe('NORMALIZE_FAILED');
  return e as TourniquetError;
}

const claims = fixture('set', 'caep-session-revoked-complex.json') as JWTPayload;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
  const other = await generateKeyPair('ES256', { extractable: true });
  otherJwks = { keys: [{ ...(await exportJWK(other.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
});

describe('SET signatures', () => {
  it('a SET signed by a configured key is verified', async () => {
    const jwt = await sign(claims);
    expect(detectFormat(jwt)).toBe('set');
    const d = await normalize(jwt, { setKeys: jwks });
    expect(d).toMatchObject({
      id: '24c63fb56e5a2d77a6b512616ca9fa24',
      kind: 'anomalous_token_use',
      identity: { id: 'dMTlD|1600802906337.16|16008.16', type: 'human' },
      evidence: { signatureVerified: true, alg: 'ES256', kid: 'k1', eventType: CAEP_REVOKED },
    });
    expect(d.raw).toBe(jwt);
  });

  it('without keys the same token is decoded and marked unverified', async () => {
    const d = await normalize(await sign(claims));
    expect(d.evidence.signatureVerified).toBe(false);
    expect(d.id).toBe('24c63fb56e5a2d77a6b512616ca9fa24');
  });

  it('with keys, a signature from another key is rejected', async () => {
    const err = await rejected(normalize(await sign(claims), { setKeys: otherJwks }));
    expect(err.message).toMatch(
      /^set: SET signature verification failed \(ERR_JWS_SIGNATURE_VERIFICATION_FAILED\)/,
    );
  });

  it('with keys, a tampered payload is rejected', async () => {
    const [h, , s] = (await sign(claims)).split('.');
    const forged = Buffer.from(JSON.stringify({ ...claims, jti: 'forged' })).toString('base64url');
    const err = await rejected(normalize(`${h}.${forged}.${s}`, { setKeys: jwks }));
    expect(err.message).toMatch(/SET signature verification failed/);
  });

  it('with keys, an unsigned (alg none) token is rejected', async () => {
    const jwt = fixture('set', 'risc-credential-change-required-compact.json') as string;
    const err = await rejected(normalize(jwt, { setKeys: jwks }));
    expect(err.message).toMatch(/SET signature verification failed/);
  });

  it('with keys, decoded claims (no signature to check) are rejected', async () => {
    const err = await rejected(normalize(claims, { setKeys: jwks }));
    expect(err.message).toMatch(/keys are configured but the record is decoded claims/);
  });

  it('issuer and audience are enforced when configured', async () => {
    const jwt = await sign(claims);
    expect(
      (await rejected(normalize(jwt, { setKeys: jwks, setIssuer: 'https://other.example/' }))).message,
    ).toMatch(/SET signature verification failed \(ERR_JWT_CLAIM_VALIDATION_FAILED\).*iss/);
    expect((await rejected(normalize(claims, { setAudience: 'https://other.example/ssf' }))).message).toMatch(
      /unexpected SET audience/,
    );
    const ok = await normalize(jwt, {
      setKeys: jwks,
      setIssuer: claims.iss!,
      setAudience: 'https://tourniquet.example.com/ssf',
    });
    expect(ok.evidence.signatureVerified).toBe(true);
  });
});

describe('SET decoding', () => {
  it('an unparseable JWT is rejected with the reason', async () => {
    const err = await rejected(normalize('eyJub3QganNvbg.eyJhIjox.sig', { format: 'set' }));
    expect(err.message).toMatch(/^set: invalid SET: JWT header could not be decoded/);
    const err2 = await rejected(normalize('not-a-jwt', { format: 'set' }));
    expect(err2.message).toMatch(/invalid SET: not a compact JWT/);
    const header = Buffer.from('{"alg":"none"}').toString('base64url');
    const err3 = await rejected(normalize(`${header}.bm90IGpzb24.`, { format: 'set' }));
    expect(err3.message).toMatch(/invalid SET: JWT payload could not be decoded/);
  });

  it('event_timestamp wins over iat; a multi-event SET is filed under its strongest event', async () => {
    const d = await normalize({
      iss: 'https://idp.example.com/',
      jti: 'multi-1',
      iat: 1718186400,
      sub_id: { format: 'opaque', id: 'u-77' },
      events: {
        [CAEP_REVOKED]: {},
        [RISC_COMPROMISE]: { credential_type: 'password', event_timestamp: 1718186000 },
      },
    });
    expect(d).toMatchObject({ kind: 'known_compromise', occurredAt: '2024-06-12T09:53:20.000Z' });
    expect(d.evidence.eventTypes).toEqual([CAEP_REVOKED, RISC_COMPROMISE]);
  });

  it('subject formats: account, aliases, uri (spiffe → workload), a plain `sub` claim', async () => {
    const base = {
      iss: 'https://idp.example.com/',
      jti: 'j',
      iat: 1718186400,
      events: { [CAEP_REVOKED]: {} },
    };
    expect(
      (await normalize({ ...base, sub_id: { format: 'account', uri: 'acct:erin@example.com' } })).identity.id,
    ).toBe('erin@example.com');
    expect(
      (
        await normalize({
          ...base,
          sub_id: {
            format: 'aliases',
            identifiers: [
              { format: 'email', email: 'frank@example.com' },
              { format: 'opaque', id: 'x' },
            ],
          },
        })
      ).identity.id,
    ).toBe('frank@example.com');
    const spiffe = await normalize({
      ...base,
      sub_id: { format: 'uri', uri: 'spiffe://example.org/ns/prod/sa/billing' },
    });
    expect(spiffe.identity).toMatchObject({
      type: 'workload',
      id: 'spiffe://example.org/ns/prod/sa/billing',
    });
    const sub = await normalize({ ...base, sub: 'user-123' });
    expect(sub.identity).toMatchObject({ provider: 'idp.example.com', id: 'user-123', type: 'human' });
    const okta = await normalize({
      ...base,
      iss: 'https://acme.okta.com',
      sub_id: { format: 'email', email: 'g@acme.com' },
    });
    expect(okta.identity.provider).toBe('okta');
    expect(okta.source).toBe('set:acme.okta.com');
  });

  it('an unsupported subject format is rejected by name', async () => {
    const err = await rejected(
      normalize({
        iss: 'https://idp.example.com/',
        jti: 'j',
        iat: 1,
        sub_id: { format: 'carrier-pigeon' },
        events: { [CAEP_REVOKED]: {} },
      }),
    );
    expect(err.message).toMatch(/unsupported subject identifier format 'carrier-pigeon' at sub_id/);
  });

  it('an NDJSON line holding a bare JWT is a record', async () => {
    const jwt = await sign(claims);
    const { records, errors } = parseRecords(`${JSON.stringify({ a: 1 })}\n${jwt}\n`);
    expect(errors).toEqual([]);
    expect(records).toEqual([{ a: 1 }, jwt]);
  });
});
