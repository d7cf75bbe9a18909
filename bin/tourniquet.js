#!/usr/bin/env node
// Entry point of the `tourniquet` command: TypeScript sources run through tsx's loader, so a fresh
// `npm ci` is all it takes (no build step).
import { register } from 'tsx/esm/api';

register();
await import('../app/cli/main.ts');
