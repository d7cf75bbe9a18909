import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  Authenticator,
  generateApiKey,
  generateAuthConfig,
  hashApiKey,
  issueLocalAdminToken,
  issueToken,
  parseAuthConfig,
} from './auth.ts';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('Authenticator', () => {
  it('verifies HS256 tokens: subject and known roles only', async () => {
    const config = generateAuthConfig();
    const auth = new Authenticator(config);
    const token = await issueToken(config, { sub: 'ann', roles: ['analyst'] });
    expect(await auth.authenticate(bearer(token))).toEqual({ id: 'ann', roles: ['analyst'], via: 'jwt' });

    const secret = new TextEncoder().encode(config.jwt!.hs256Secrets![0]!);
    const spaced = await new SignJWT({ roles: 'auditor superuser analyst' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('sam')
      .setIssuer('tourniquet-local')
      .setAudience('tourniquet')
      .setExpirationTime('1h')
      .sign(secret);
    expect((await auth.authenticate(bearer(spaced)))!.roles).toEqual(['auditor', 'analyst']);

    const noSub = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('tourniquet-local')
      .setAudience('tourniquet')
      .setExpirationTime('1h')
      .sign(secret);
    await expect(auth.authenticate(bearer(noSub))).rejects.toMatchObject({
      status: 401,
      message: expect.stringContaining('sub'),
    });
  });

  it('accepts any configured secret (rotation) and rejects others, expired, wrong issuer, alg none', async () => {
    const oldC = generateAuthConfig();
    const newC = generateAuthConfig();
    const auth = new Authenticator({
      jwt: { ...newC.jwt, hs256Secrets: [...newC.jwt!.hs256Secrets!, ...oldC.jwt!.hs256Secrets!] },
    });
    expect(
      await auth.authenticate(bearer(await issueToken(oldC, { sub: 'a', roles: ['admin'] }))),
    ).toMatchObject({ id: 'a' });
    expect(
      await auth.authenticate(bearer(await issueToken(newC, { sub: 'b', roles: ['admin'] }))),
    ).toMatchObject({ id: 'b' });

    const stranger = generateAuthConfig();
    await expect(
      auth.authenticate(bearer(await issueToken(stranger, { sub: 'eve', roles: ['admin'] }))),
    ).rejects.toMatchObject({
      status: 401,
      message: 'invalid bearer token',
    });
    const expired = await issueToken(newC, {
      sub: 'b',
      roles: ['admin'],
      expiresAt: new Date(Date.now() - 60_000),
    });
    await expect(auth.authenticate(bearer(expired))).rejects.toMatchObject({
      status: 401,
      message: 'token expired',
    });
    const wrongIss = await issueToken(
      { jwt: { ...newC.jwt, issuer: 'someone-else' } },
      { sub: 'b', roles: ['admin'] },
    );
    await expect(auth.authenticate(bearer(wrongIss))).rejects.toMatchObject({
      status: 401,
      message: expect.stringContaining('rejected'),
    });

    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', roles: ['admin'] })).toString('base64url')}.`;
    await expect(auth.authenticate(bearer(none))).rejects.toMatchObject({ status: 401 });
    await expect(auth.authenticate(bearer('not-a-jwt'))).rejects.toMatchObject({ status: 401 });
    await expect(auth.authenticate({ authorization: 'Basic YTpi' })).rejects.toMatchObject({
      status: 401,
      message: expect.stringContaining('Basic'),
    });
    await expect(auth.authenticate({ authorization: 'Bearer' })).rejects.toMatchObject({ status: 401 });
    expect(await auth.authenticate({})).toBeUndefined();
  });

  it('verifies asymmetric tokens against public JWKs, and never accepts HS256 in their place', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'idp-1', alg: 'ES256' };
    const auth = new Authenticator({
      jwt: { jwks: [jwk], issuer: 'https://idp.example', audience: 'tourniquet' },
    });
    const token = await new SignJWT({ roles: ['auditor'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setSubject('auditor@example.com')
      .setIssuer('https://idp.example')
      .setAudience('tourniquet')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect(await auth.authenticate(bearer(token))).toEqual({
      id: 'auditor@example.com',
      roles: ['auditor'],
      via: 'jwt',
    });
    const hs = await issueToken(generateAuthConfig(), { sub: 'x', roles: ['admin'] });
    await expect(auth.authenticate(bearer(hs))).rejects.toMatchObject({ status: 401 });
  });

  it('verifies API keys from either header against stored hashes only', async () => {
    const { key, entry } = generateApiKey('siem-forwarder', ['service']);
    expect(entry.sha256).toBe(hashApiKey(key));
    expect(JSON.stringify(entry)).not.toContain(key);
    const auth = new Authenticator({ apiKeys: [entry] });
    const want = { id: 'siem-forwarder', roles: ['service'], via: 'api-key' };
    expect(await auth.authenticate({ 'x-api-key': key })).toEqual(want);
    expect(await auth.authenticate({ authorization: `ApiKey ${key}` })).toEqual(want);
    await expect(auth.authenticate({ 'x-api-key': `${key}x` })).rejects.toMatchObject({
      status: 401,
      message: 'unknown API key',
    });
  });

  it('fails closed: an empty or second credential is refused, even beside a valid one', async () => {
    const { key, entry } = generateApiKey('siem-forwarder', ['service']);
    const auth = new Authenticator({ apiKeys: [entry] });
    for (const empty of ['', ' ', '\t']) {
      await expect(auth.authenticate({ 'x-api-key': key, authorization: empty })).rejects.toMatchObject({
        status: 401,
        message: expect.stringContaining('not both'),
      });
      await expect(auth.authenticate({ authorization: empty })).rejects.toMatchObject({
        status: 401,
        message: 'malformed Authorization header',
      });
      await expect(auth.authenticate({ 'x-api-key': empty })).rejects.toMatchObject({
        status: 401,
        message: 'empty X-API-Key header',
      });
    }
    await expect(
      auth.authenticate({ 'x-api-key': key, authorization: `ApiKey ${key}` }),
    ).rejects.toMatchObject({ status: 401, message: expect.stringContaining('not both') });
    expect(await auth.authenticate({})).toBeUndefined();
  });

  it('issues a local admin token valid for a week by default', async () => {
    const config = generateAuthConfig();
    const token = await issueLocalAdminToken(config);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      sub: 'local-admin',
      roles: ['admin'],
      iss: 'tourniquet-local',
      aud: 'tourniquet',
    });
    expect(claims.exp! - claims.iat!).toBe(7 * 24 * 3600);
    expect(await new Authenticator(config).authenticate(bearer(token))).toMatchObject({
      id: 'local-admin',
      roles: ['admin'],
    });
    await expect(issueLocalAdminToken({ apiKeys: [] })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('validates its configuration', () => {
    expect(() => parseAuthConfig({ jwt: { hs256Secrets: ['short'] } })).toThrow(/invalid/);
    expect(() => parseAuthConfig({ apiKeys: [{ id: 'x', sha256: 'abc', roles: ['service'] }] })).toThrow();
    expect(() =>
      parseAuthConfig({ apiKeys: [{ id: 'x', sha256: hashApiKey('k'), roles: ['root'] }] }),
    ).toThrow();
    expect(parseAuthConfig(generateAuthConfig()).jwt!.hs256Secrets).toHaveLength(1);
  });
});
