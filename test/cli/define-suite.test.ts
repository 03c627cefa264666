/** TypeScript suites: `export default defineSuite({...})`, typed and validated like YAML. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSuite } from '../../src/run/suite.ts';
import { ROOT, runCli, tempDir } from '../helpers/lab.ts';

function tsSuite(body: string): string {
  const dir = tempDir('blackout-ts-');
  const file = join(dir, 'suite.ts');
  writeFileSync(file, `import { defineSuite } from '${join(ROOT, 'src/run/suite.ts')}';\nexport default defineSuite(${body});\n`);
  return file;
}

describe('defineSuite', () => {
  it('loads a TypeScript suite with the same validation', async () => {
    const file = tsSuite(`{ name: 'ts', target: 'lab', probes: [{ name: 'echo', kind: 'tcp', interval: '50ms' }], injector: { kind: 'live-migration' }, expect: { echo: { survives: 100 } } }`);
    const s = await loadSuite(file);
    expect(s).toMatchObject({ name: 'ts', probes: [{ name: 'echo', kind: 'tcp', interval: 50 }], injector: { kind: 'live-migration', pause: 150 }, blackouts: [] });
    const r = await runCli(['validate', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid — 1 probes, injector live-migration/);
  });

  it("imports defineSuite from 'blackout' wherever the suite is (the running copy)", async () => {
    const dir = tempDir('blackout-ts-');
    const file = join(dir, 'suite.ts');
    writeFileSync(
      file,
      `import { defineSuite } from 'blackout';\nexport default defineSuite({ name: 'ts', target: 'lab', probes: [{ name: 'echo', kind: 'tcp', interval: '50ms' }], injector: { kind: 'live-migration' } });\n`,
    );
    const r = await runCli(['validate', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/valid — 1 probes, injector live-migration/);
  });

  it('a wrong TypeScript suite names the field', async () => {
    const r = await runCli(['validate', tsSuite(`{ name: 'ts', target: 'lab', probes: [{ name: 'echo', kind: 'tcp', interval: 'fast' }], injector: { kind: 'cable-pull' } } as any`)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/probes\[0\]\.interval: expected a duration/);
  });
});
