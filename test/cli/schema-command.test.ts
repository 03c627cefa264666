/**
 * `blackout schema` through the real CLI: it prints the committed
 * schema/suite.schema.json (and writes it with --out), and a YAML suite with a
 * wrong field is refused by `blackout validate` (exit 2) and by that schema at
 * the same field. The many other wrong cases are in test/unit/suite-schema.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, ROOT } from '../helpers/lab.ts';

const dir = mkdtempSync(join(tmpdir(), 'blackout-schema-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const committed = readFileSync(join(ROOT, 'schema/suite.schema.json'), 'utf8');

describe('blackout schema', () => {
  it('prints the committed schema', async () => {
    const r = await runCli(['schema']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(committed);
  });

  it('--out writes it to a file', async () => {
    const out = join(dir, 'suite.schema.json');
    const r = await runCli(['schema', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(committed);
  });

  it('a wrong probe field: validate exits 2 naming it, and the schema an editor reads flags the same field', async () => {
    const file = join(dir, 'wrong.yaml');
    const yaml = [
      `# yaml-language-server: $schema=${join(ROOT, 'schema/suite.schema.json')}`,
      'name: wrong field',
      'target: lab',
      'probes:',
      '  - { name: ping, kind: icmp, interval: 10ms }',
      '  - { name: echo, kind: tcp, interval: 100ms, userTimeOut: 3s }',
      'injector: { kind: cable-pull }',
      '',
    ].join('\n');
    writeFileSync(file, yaml);
    const r = await runCli(['validate', file]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/probes\[1\]: unknown field "userTimeOut"/);

    const check = new Ajv({ allErrors: true, allowUnionTypes: true, formats: { uri: (s: string) => URL.canParse(s) } }).compile(JSON.parse(committed) as object);
    expect(check(parseYaml(yaml))).toBe(false);
    expect(check.errors).toContainEqual(expect.objectContaining({ instancePath: '/probes/1', keyword: 'additionalProperties', params: { additionalProperty: 'userTimeOut' } }));
  });
});
