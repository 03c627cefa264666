/**
 * The package's entry (`import { defineSuite } from 'blackout'`): what a
 * TypeScript suite file needs, typed. The command itself is bin/blackout.mjs.
 */
export { defineSuite, type SuiteInput } from './run/suite.ts';
