#!/usr/bin/env node
// Entry point of the `tourniquet` command: TypeScript sources run through tsx's loader, so a fresh
// `npm ci` is all it takes (no build step). Plain JavaScript up to the version check, so that an
// old Node gets one line instead of a syntax error.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `tourniquet needs Node.js 22.12 or newer (24 LTS recommended); this is ${process.version}. Run \`source .ci/node.sh\` (installs Node 24 into ~/.cache/tourniquet), then \`npm ci\` again.\n`,
  );
  process.exit(1);
}

const { register } = await import('tsx/esm/api');
register();
await import('../app/cli/main.ts');
