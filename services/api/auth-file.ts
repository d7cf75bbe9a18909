import { randomBytes } from 'node:crypto';
import { type FSWatcher, readFileSync, renameSync, statSync, watch, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { type AuthConfig, Authenticator, type Principal, parseAuthConfig } from './auth.ts';

/**
 * `auth.json` as a live source: the CLI (`tourniquet auth …`) rewrites it atomically (temporary file
 * + rename), and a running server picks the new version up without a restart. fs.watch on the
 * directory reacts at once (a rename replaces the file, so watching the file itself would go deaf);
 * a periodic stat is the fallback for filesystems where fs.watch says nothing (network mounts,
 * some containers).
 */

const AUTH_FILE = 'auth.json';
export const authFileOf = (dataDir: string): string => join(dataDir, AUTH_FILE);

export function readAuthFile(path: string): AuthConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw Object.assign(new Error(`cannot read ${path}: ${(err as Error).message}`), { cause: err });
  }
  return parseAuthConfig(JSON.parse(text));
}

/** Replaces the file in one step: readers see the old version or the new one, never half of one. */
export function writeAuthFileAtomic(path: string, config: AuthConfig): void {
  const valid = parseAuthConfig(config);
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(valid, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** The parts of the file's identity that change when it is rewritten. */
function fingerprint(path: string): string | undefined {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}`;
  } catch {
    return undefined;
  }
}

export interface AuthSource {
  /** The configuration in force now. */
  config(): AuthConfig;
  /** Verifies a request's credentials against the configuration in force now. */
  authenticate(headers: Record<string, string | string[] | undefined>): Promise<Principal | undefined>;
  /** The same, throttled per source address and key id (see AuthThrottle). */
  authenticateFrom(
    headers: Record<string, string | string[] | undefined>,
    address: string,
  ): Promise<Principal | undefined>;
  close(): void;
}

/** A fixed configuration (tests, callers that pass a config object). */
export function staticAuthSource(config: AuthConfig): AuthSource {
  const authenticator = new Authenticator(config);
  return {
    config: () => config,
    authenticate: (headers) => authenticator.authenticate(headers),
    authenticateFrom: (headers, address) => authenticator.authenticateFrom(headers, address),
    close: () => undefined,
  };
}

/**
 * Watches an auth file. A new version that does not parse is refused (logged as an error) and the
 * previous one stays in force: a typo in auth.json must not lock everyone out or let anyone in.
 */
export class AuthFileWatcher implements AuthSource {
  private current: { config: AuthConfig; authenticator: Authenticator };
  private seen: string | undefined;
  private lastLook = 0;
  private readonly watcher: FSWatcher | undefined;
  private readonly timer: NodeJS.Timeout;

  private readonly path: string;
  private readonly opts: { log?: Logger; pollMs?: number; initial?: AuthConfig };

  constructor(path: string, opts: { log?: Logger; pollMs?: number; initial?: AuthConfig } = {}) {
    this.path = path;
    this.opts = opts;
    this.seen = fingerprint(path);
    const config = opts.initial ?? readAuthFile(path);
    this.current = { config, authenticator: new Authenticator(config) };
    try {
      this.watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(path)) this.check();
      });
      this.watcher.on('error', (err) =>
        opts.log?.warn({ err, path }, 'auth file watch failed; polling only'),
      );
    } catch (err) {
      opts.log?.warn({ err, path }, 'cannot watch the auth file; polling only');
    }
    this.timer = setInterval(() => this.check(), opts.pollMs ?? 1000);
    this.timer.unref();
  }

  config(): AuthConfig {
    return this.current.config;
  }

  authenticate(headers: Record<string, string | string[] | undefined>): Promise<Principal | undefined> {
    // Catch a change the watcher has not reported yet; at most one stat per 100 ms, so that a busy
    // ingest endpoint does not pay a syscall per request.
    const now = Date.now();
    if (now - this.lastLook >= 100) this.check();
    return this.current.authenticator.authenticate(headers);
  }

  authenticateFrom(
    headers: Record<string, string | string[] | undefined>,
    address: string,
  ): Promise<Principal | undefined> {
    const now = Date.now();
    if (now - this.lastLook >= 100) this.check();
    // The throttle lives in the authenticator: a reload (a new auth.json) starts it afresh.
    return this.current.authenticator.authenticateFrom(headers, address);
  }

  /** Reloads when the file changed since the last look. */
  check(): void {
    this.lastLook = Date.now();
    const now = fingerprint(this.path);
    if (now === undefined || now === this.seen) return;
    this.seen = now;
    try {
      const config = readAuthFile(this.path);
      this.current = { config, authenticator: new Authenticator(config) };
      this.opts.log?.info({ path: this.path }, 'auth configuration reloaded');
    } catch (err) {
      this.opts.log?.error(
        { err, path: this.path },
        'auth file changed but is invalid; keeping the previous one',
      );
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.watcher?.close();
  }
}
