import { describe, expect, it } from 'vitest';
import { TourniquetError } from '../../platform/errors.ts';
import { fatalLine } from './fatal.ts';

describe('fatalLine', () => {
  it('a typed error is its code and message', () => {
    expect(fatalLine(new TourniquetError('NOT_FOUND', 'no event store at x', { status: 404 }))).toBe(
      'tourniquet: NOT_FOUND: no event store at x',
    );
  });

  it('a native module built for another Node says to run npm ci again', () => {
    // The message Node gives when better-sqlite3 was compiled for Node 20 and runs on a newer one.
    const err = new Error(
      "The module '/x/node_modules/better-sqlite3/build/Release/better_sqlite3.node'\nwas compiled against a different Node.js version using\nNODE_MODULE_VERSION 115. This version of Node.js requires\nNODE_MODULE_VERSION 137. Please try re-compiling or re-installing\nthe module (for instance, using `npm rebuild` or `npm install`).",
    );
    const line = fatalLine(err)!;
    expect(line).toContain('run npm ci again');
    expect(line).toContain('NODE_MODULE_VERSION 115');
    expect(line).not.toContain('\n');
  });

  it('anything else is left to the stack trace', () => {
    expect(fatalLine(new TypeError('x is undefined'))).toBeUndefined();
  });
});
