import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { OidcConfigSchema } from '../auth.ts';
import { claimValues, mapRoles, verifyIdToken } from './oidc.ts';

const config = OidcConfigSchema.parse({
  issuer: 'https://idp.example.test/realms/soc',
  clientId: 'tq-console',
  roleClaim: 'realm_access.roles',
  roleMap: { 'soc-analyst': ['analyst'], 'soc-lead': ['analyst', 'admin'] },
});

async function keys() {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
  return { privateKey, jwks: createLocalJWKSet({ keys: [jwk] }) };
}

function idToken(
  key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'],
  claims: Record<string, unknown>,
  o: { iss?: string; aud?: string; exp?: string | number } = {},
) {
  return new SignJWT({
    nonce: 'n-1',
    preferred_username: 'ann',
    realm_access: { roles: ['soc-analyst'] },
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(o.iss ?? config.issuer)
    .setAudience(o.aud ?? config.clientId)
    .setSubject('f3a1-uuid')
    .setIssuedAt()
    .setExpirationTime(o.exp ?? '5m')
    .sign(key);
}

describe('ID token verification', () => {
  it('accepts a token from the issuer for this client with the nonce sent, mapping roles', async () => {
    const { privateKey, jwks } = await keys();
    const p = await verifyIdToken(await idToken(privateKey, {}), { config, jwks, nonce: 'n-1' });
    expect(p).toEqual({ id: 'ann', roles: ['analyst'], via: 'oidc' });
  });

  it.each([
    ['another issuer', { iss: 'https://evil.example.test' }, 'token_invalid'],
    ['another audience', { aud: 'some-other-app' }, 'token_invalid'],
    ['an expired token', { exp: Math.floor(Date.now() / 1000) - 600 }, 'token_invalid'],
  ])('refuses %s', async (_what, o, reason) => {
    const { privateKey, jwks } = await keys();
    await expect(
      verifyIdToken(await idToken(privateKey, {}, o), { config, jwks, nonce: 'n-1' }),
    ).rejects.toMatchObject({
      details: { reason },
    });
  });

  it('refuses a signature by a key not in the IdP’s JWKS', async () => {
    const { jwks } = await keys();
    const other = await keys();
    await expect(
      verifyIdToken(await idToken(other.privateKey, {}), { config, jwks, nonce: 'n-1' }),
    ).rejects.toMatchObject({ details: { reason: 'token_invalid' } });
  });

  it('refuses a missing or different nonce, and a user with no mapped role', async () => {
    const { privateKey, jwks } = await keys();
    await expect(
      verifyIdToken(await idToken(privateKey, { nonce: undefined }), { config, jwks, nonce: 'n-1' }),
    ).rejects.toMatchObject({ details: { reason: 'nonce_mismatch' } });
    await expect(
      verifyIdToken(await idToken(privateKey, {}), { config, jwks, nonce: 'n-2' }),
    ).rejects.toMatchObject({
      details: { reason: 'nonce_mismatch' },
    });
    await expect(
      verifyIdToken(await idToken(privateKey, { realm_access: { roles: ['offline_access'] } }), {
        config,
        jwks,
        nonce: 'n-1',
      }),
    ).rejects.toMatchObject({ status: 403, details: { reason: 'no_role' } });
  });
});

describe('role mapping', () => {
  it('reads a dotted claim path, a string or a list, and merges the mapped roles', () => {
    expect(claimValues({ a: { b: ['x', 1, 'y'] } }, 'a.b')).toEqual(['x', 'y']);
    expect(claimValues({ groups: 'soc-lead' }, 'groups')).toEqual(['soc-lead']);
    expect(claimValues({}, 'a.b')).toEqual([]);
    expect(mapRoles({ realm_access: { roles: ['soc-analyst', 'soc-lead', 'other'] } }, config)).toEqual([
      'analyst',
      'admin',
    ]);
  });
});
