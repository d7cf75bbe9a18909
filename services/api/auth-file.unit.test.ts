import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateApiKey, generateAuthConfig } from './auth.ts';
import { AuthFileWatcher, writeAuthFileAtomic } from './auth-file.ts';

describe('AuthFileWatcher', () => {
  const watchers: AuthFileWatcher[] = [];
  afterEach(() => {
    for (const w of watchers.splice(0)) w.close();
  });

  function setup() {
    const dir = mkdtempSync(join(tmpdir(), 'tq-authfile-'));
    const path = join(dir, 'auth.json');
    const { key, entry } = generateApiKey('ops', ['analyst']);
    const config = { ...generateAuthConfig(), apiKeys: [entry] };
    writeAuthFileAtomic(path, config);
    const w = new AuthFileWatcher(path, { pollMs: 20 });
    watchers.push(w);
    return { dir, path, key, config, w };
  }

  it('applies a rewritten file (atomic rename) without a restart', async () => {
    const { path, key, config, w } = setup();
    expect(await w.authenticate({ 'x-api-key': key })).toMatchObject({ id: 'ops', roles: ['analyst'] });
    writeAuthFileAtomic(path, { ...config, apiKeys: [] });
    w.check();
    await expect(w.authenticate({ 'x-api-key': key })).rejects.toThrow('unknown API key');
  });

  it('keeps the previous configuration when the new file is invalid', async () => {
    const { path, key, w } = setup();
    writeFileSync(path, '{"apiKeys": [{"id": "x"}]}');
    w.check();
    expect(await w.authenticate({ 'x-api-key': key })).toMatchObject({ id: 'ops' });
  });

  it('leaves no temporary files behind', () => {
    const { dir } = setup();
    expect(readdirSync(dir)).toEqual(['auth.json']);
  });
});
