#!/usr/bin/env node
// The blackout CLI entry: registers the TypeScript loader (tsx) and hands over.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/cli.ts');
process.exitCode = await main(process.argv);
