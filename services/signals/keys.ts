/**
 * The key the transmitter signs SETs with: a private JWK from a file the operator provides, or one
 * generated on first start (ES256) and kept in the data directory, as auth.json is. Receivers verify
 * with the public half, served as a JWKS.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { TourniquetError } from '../../platform/errors.ts';

export interface SigningKey {
  alg: string;
  kid: string;
  privateKey: Awaited<ReturnType<typeof importJWK>>;
  publicJwk: JWK;
}

/** The configured key file, else the one generated in the data dir. */
export function signingKeyPathOf(signingKeyFile: string | undefined, dataDir: string): string {
  return signingKeyFile ?? join(dataDir, 'ssf-signing-key.json');
}

function invalid(message: string): TourniquetError {
  return new TourniquetError('CONFIG_INVALID', message, { status: 500 });
}

/** The JWS algorithm a key is for: its `alg`, else the usual one for its type and curve. */
function algOf(jwk: JWK): string {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'EC') return jwk.crv === 'P-384' ? 'ES384' : jwk.crv === 'P-521' ? 'ES512' : 'ES256';
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  throw invalid(`SET signing key: key type ${String(jwk.kty)} cannot sign (use EC, RSA or OKP)`);
}

export async function signingKeyFromJwk(jwk: JWK, source: string): Promise<SigningKey> {
  if (!jwk.d) throw invalid(`SET signing key ${source} is not a private key (no "d")`);
  const alg = algOf(jwk);
  let privateKey: Awaited<ReturnType<typeof importJWK>>;
  try {
    privateKey = await importJWK(jwk, alg);
  } catch (e) {
    throw invalid(`SET signing key ${source} cannot be imported for ${alg}: ${(e as Error).message}`);
  }
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, oth: _oth, k: _k, ...pub } = jwk;
  const kid = jwk.kid ?? (await calculateJwkThumbprint(pub));
  return { alg, kid, privateKey, publicJwk: { ...pub, kid, alg, use: 'sig' } };
}

/** Reads the private JWK at `path`; with `create`, generates and writes one (mode 0600) when none is there. */
export async function loadOrCreateSigningKey(path: string, create: boolean): Promise<SigningKey> {
  if (!existsSync(path)) {
    if (!create) throw invalid(`SET signing key file ${path} does not exist`);
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(privateKey);
    jwk.alg = 'ES256';
    jwk.kid = await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! });
    writeFileSync(path, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600 });
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(readFileSync(path, 'utf8')) as JWK;
  } catch (e) {
    throw invalid(`SET signing key file ${path} is not a JSON JWK: ${(e as Error).message}`);
  }
  return signingKeyFromJwk(jwk, path);
}
