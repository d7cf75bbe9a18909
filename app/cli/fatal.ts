import { TourniquetError } from '../../platform/errors.ts';

/**
 * The one line a command prints for an error it cannot go on from, or undefined for a bug (which
 * keeps its stack trace). A native module built for another Node.js (better-sqlite3 after switching
 * Node without reinstalling) is a setup problem with a known fix, not a crash.
 */
export function fatalLine(err: unknown): string | undefined {
  if (err instanceof TourniquetError) return `tourniquet: ${err.code}: ${err.message}`;
  if (err instanceof Error && /NODE_MODULE_VERSION/.test(err.message)) {
    const found = /using\s+NODE_MODULE_VERSION (\d+)/.exec(err.message)?.[1];
    const built = found ? ` (it was built for NODE_MODULE_VERSION ${found})` : '';
    return `tourniquet: a native module does not match this Node.js ${process.version}${built}: run npm ci again with this Node (after \`source .ci/node.sh\`).`;
  }
  return undefined;
}
