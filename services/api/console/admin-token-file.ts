import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AuthConfig, issueLocalAdminToken } from '../auth.ts';

const ADMIN_TOKEN_FILE = 'admin.token';
/** Lifetime of the token in the file: a day; `tourniquet auth token` signs others on demand. */
const ADMIN_TOKEN_TTL_SECONDS = 24 * 3600;

/**
 * The operator's admin credential on `tourniquet start` / `serve projector`: written to a file only
 * its owner can read (0600), never printed, so logs and terminals scraped into a SIEM never hold it.
 */
export async function writeAdminTokenFile(
  dataDir: string,
  auth: AuthConfig,
): Promise<{ token: string; path: string }> {
  const token = await issueLocalAdminToken(auth, { ttlSeconds: ADMIN_TOKEN_TTL_SECONDS });
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return { token, path };
}
