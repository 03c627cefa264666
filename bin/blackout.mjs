#!/usr/bin/env node
// The blackout CLI entry.
// The published package runs the compiled JavaScript in dist/ (npm run build,
// run by prepack), with plain node. A checkout runs its TypeScript sources
// through tsx instead, whenever they are there: the package does not ship
// src/, and a checkout never runs a dist/ left behind by an older build, so
// `node bin/blackout.mjs` and `npm run demo` work in a fresh clone without a
// build step and always run what is in src/.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/cli.ts', import.meta.url);
let main;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else {
  ({ main } = await import('../dist/cli/cli.js'));
}
process.exitCode = await main(process.argv);
