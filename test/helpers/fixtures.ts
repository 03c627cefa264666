/** Run folders made from the committed fixture logs (test/fixtures/). */
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const FIXTURES = resolve(import.meta.dirname, '../fixtures');

/** a fresh run folder holding a copy of a fixture log (and its attachments) */
export function fixtureRun(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `blackout-fx-${name}-`));
  cpSync(join(FIXTURES, `${name}.jsonl`), join(dir, 'events.jsonl'));
  cpSync(join(FIXTURES, 'attachments'), join(dir, 'attachments'), { recursive: true });
  return dir;
}

/** where tests keep what a person may want to look at (screenshots): reports/test-output/ */
export const TEST_OUTPUT = resolve(import.meta.dirname, '../../reports/test-output');
