import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TourniquetError } from '../../platform/errors.ts';
import {
  type AuthConfig,
  generateApiKey,
  issueToken,
  loadOrCreateAuthConfig,
  ROLES,
  type Role,
} from '../../services/api/auth.ts';
import { authFileOf, readAuthFile, writeAuthFileAtomic } from '../../services/api/auth-file.ts';

/**
 * `tourniquet auth …`: people and machines without an identity provider. Keys are printed once and
 * stored only as their sha256; every change rewrites auth.json atomically, and a running server
 * applies it without a restart.
 */

interface AuthCliIo {
  stdout: NodeJS.WritableStream;
}

function badInput(field: string, message: string): TourniquetError {
  return new TourniquetError('VALIDATION_FAILED', `${field}: ${message}`, {
    status: 400,
    details: { issues: [{ path: field, message }] },
  });
}

function parseRoles(text: string): Role[] {
  const roles = [
    ...new Set(
      text
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean),
    ),
  ];
  if (roles.length === 0) throw badInput('--roles', `name at least one of ${ROLES.join(', ')}`);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0)
    throw badInput('--roles', `unknown role ${unknown.join(', ')}; roles are ${ROLES.join(', ')}`);
  return roles as Role[];
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `900`, `15m`, `12h`, `7d` as seconds. */
function parseTtl(text: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw badInput('--ttl', `"${text}" is not a duration (e.g. 900, 15m, 12h, 7d)`);
  const seconds = Number(m[1]) * (UNITS[m[2] || 's'] ?? 1);
  if (seconds <= 0 || seconds > 366 * 86_400) throw badInput('--ttl', 'between 1 second and 366 days');
  return seconds;
}

/** The data directory's auth.json (created with a fresh signing secret when absent). */
function load(dataDir: string): { path: string; config: AuthConfig } {
  mkdirSync(dataDir, { recursive: true });
  const path = authFileOf(dataDir);
  const config = existsSync(path) ? readAuthFile(path) : loadOrCreateAuthConfig(dataDir);
  return { path, config };
}

function addKey(dataDir: string, id: string, rolesText: string, io: AuthCliIo): number {
  if (!id.trim()) throw badInput('--id', 'must not be empty');
  const roles = parseRoles(rolesText);
  const { path, config } = load(dataDir);
  const keys = config.apiKeys ?? [];
  if (keys.some((k) => k.id === id))
    throw new TourniquetError('CONFLICT', `a key with id ${id} exists; revoke it first (auth revoke-key)`, {
      status: 409,
    });
  const { key, entry } = generateApiKey(id, roles);
  writeAuthFileAtomic(path, { ...config, apiKeys: [...keys, entry] });
  io.stdout.write(
    `${key}\n# API key for ${id} (${roles.join(', ')}): shown once, only its sha256 is kept in ${path}\n`,
  );
  return 0;
}

function revokeKey(dataDir: string, id: string, io: AuthCliIo): number {
  const { path, config } = load(dataDir);
  const keys = config.apiKeys ?? [];
  if (!keys.some((k) => k.id === id))
    throw new TourniquetError('NOT_FOUND', `no key with id ${id} in ${path}`, { status: 404 });
  writeAuthFileAtomic(path, { ...config, apiKeys: keys.filter((k) => k.id !== id) });
  io.stdout.write(`revoked ${id}\n`);
  return 0;
}

function listAuth(dataDir: string, io: AuthCliIo): number {
  const { path, config } = load(dataDir);
  const keys = config.apiKeys ?? [];
  io.stdout.write(`# ${path}\n`);
  for (const k of keys)
    io.stdout.write(`key\t${k.id}\t${k.roles.join(',')}\tsha256:${k.sha256.slice(0, 12)}…\n`);
  if (keys.length === 0) io.stdout.write('(no API keys)\n');
  const oidc = config.oidc;
  if (oidc) io.stdout.write(`oidc\t${oidc.issuer}\tclient ${oidc.clientId}\n`);
  return 0;
}

async function signToken(
  dataDir: string,
  opts: { sub: string; roles: string; ttl: string },
  io: AuthCliIo,
): Promise<number> {
  if (!opts.sub.trim()) throw badInput('--sub', 'must not be empty');
  const roles = parseRoles(opts.roles);
  const ttlSeconds = parseTtl(opts.ttl);
  const { config } = load(dataDir);
  const token = await issueToken(config, { sub: opts.sub, roles, ttlSeconds });
  io.stdout.write(`${token}\n`);
  return 0;
}

export function registerAuthCommands(program: Command): void {
  const dataDir = (o: { dataDir: string }) => resolve(o.dataDir);
  const io = { stdout: process.stdout };
  const exit = (code: number) => {
    process.exitCode = code;
  };
  const auth = program
    .command('auth')
    .description(
      'API keys and signed tokens in <data-dir>/auth.json (a running server applies changes at once)',
    );
  const withDir = (c: Command) =>
    c.option('--data-dir <dir>', 'the data directory holding auth.json', '.tourniquet');
  withDir(
    auth
      .command('add-key')
      .description('create an API key; prints it once (only its hash is stored)')
      .requiredOption('--id <id>', 'the principal the key acts as (recorded as the actor)')
      .requiredOption('--roles <roles>', `comma-separated: ${ROLES.join(', ')}`),
  ).action((o) => exit(addKey(dataDir(o), o.id, o.roles, io)));
  withDir(
    auth
      .command('revoke-key')
      .description('remove an API key; a running server refuses it from then on')
      .requiredOption('--id <id>', 'the key to revoke'),
  ).action((o) => exit(revokeKey(dataDir(o), o.id, io)));
  withDir(
    auth.command('list').description('list API keys (ids, roles, hash prefixes) and the SSO issuer'),
  ).action((o) => exit(listAuth(dataDir(o), io)));
  withDir(
    auth
      .command('token')
      .description("sign a JWT with the server's key (HS256, with exp)")
      .requiredOption('--sub <subject>', 'the principal the token acts as')
      .requiredOption('--roles <roles>', `comma-separated: ${ROLES.join(', ')}`)
      .option('--ttl <duration>', 'lifetime: seconds or 15m, 12h, 7d', '1h'),
  ).action(async (o) => exit(await signToken(dataDir(o), o, io)));
}
