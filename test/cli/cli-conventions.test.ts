/**
 * CLI conventions, through the real CLI as a child process (no terminal, as in
 * CI): an unknown command or option exits 2 with commander's suggestion
 * (also with --help after it), every exit code is in --help, --json gives
 * machine-readable output, and colour only on a terminal unless forced.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli, ROOT } from '../helpers/lab.ts';
import { colorEnabled } from '../../src/core/color.ts';

const dir = mkdtempSync(join(tmpdir(), 'blackout-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ESC = '\x1b[';

describe('unknown commands and options', () => {
  it.each([
    [['nonsense'], /unknown command 'nonsense'/],
    [['nonsense', '--help'], /unknown command 'nonsense'/],
    [['-h', 'nonsense'], /unknown command 'nonsense'/],
    [['help', 'nonsense'], /unknown command 'nonsense'/],
    [['rn', 'suite.yaml'], /unknown command 'rn'\n\(Did you mean run\?\)/],
    [['lab', 'statsu', '--help'], /unknown command 'statsu'\n\(Did you mean status\?\)/],
    [['run', '--dryrun', 'suite.yaml'], /unknown option '--dryrun'\n\(Did you mean --dry-run\?\)/],
    [['kinds', '--jsn'], /unknown option '--jsn'\n\(Did you mean --json\?\)/],
  ])('blackout %j exits 2 and says why', async (args, why) => {
    const r = await runCli(args as string[]);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(why as RegExp);
    expect(r.stdout).toBe('');
  });

  it('help for a known command still exits 0; every exit code is listed', async () => {
    for (const args of [['--help'], ['run', '--help'], ['help', 'run']]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(0);
      for (const code of ['0', '1', '2', '3', '4', '5', '130']) expect(r.stdout).toMatch(new RegExp(`^  ${code} +\\S`, 'm'));
      expect(r.stdout).toMatch(/3 +the injector failed mid-run .*the target was restored/);
    }
  });
});

describe('--json', () => {
  it('validate --json: the suite as read, or { valid: false, problems } naming each field, exit 2', async () => {
    const ok = await runCli(['validate', join(ROOT, 'suites/lab-cable-pull.yaml'), '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      valid: true,
      name: 'lab cable pull',
      injector: 'cable-pull',
      probes: [{ name: 'ping', kind: 'icmp', intervalMs: 10 }, { name: 'echo' }, { name: 'echo-ut3s' }],
      blackoutsMs: [2000, 5000, 10000],
      strict: false,
    });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: x\ntarget: lab\nprobes: [{ name: p, kind: tcp, interval: fast }]\ninjector: { kind: cable-pull }\nstrict: yes-please\n');
    const r = await runCli(['validate', bad, '--json']);
    expect(r.code).toBe(2);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ file: bad, valid: false });
    expect(j.problems.join('\n')).toMatch(/^strict: /m);
  });

  it('kinds --json lists every probe and injector kind', async () => {
    const r = await runCli(['kinds', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.probes.map((p: { kind: string }) => p.kind)).toEqual(expect.arrayContaining(['icmp', 'tcp', 'postgres']));
    expect(j.injectors.map((p: { kind: string }) => p.kind)).toEqual(expect.arrayContaining(['cable-pull', 'quick-migration']));
    expect(j.probes.every((p: { summary: string }) => p.summary.length > 0)).toBe(true);
    // what a client needs installed, from the probe's own declaration
    expect(j.probes.find((p: { kind: string }) => p.kind === 'smb').packages).toEqual(['smbclient']);
    expect(j.probes.find((p: { kind: string }) => p.kind === 'postgres').packages).toEqual([]);
  });

  it('lab status --json for a lab that is not up', async () => {
    const r = await runCli(['lab', 'status', '--name', 'nx-absent', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'nx-absent', up: false });
  });
});

describe('colour', () => {
  it('plain when not a terminal (also with CI set), coloured only when forced, never with NO_COLOR', async () => {
    const bad = join(dir, 'missing.yaml');
    const plain = await runCli(['validate', bad], { env: { CI: 'true', NO_COLOR: undefined, FORCE_COLOR: undefined } });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/invalid suite/);
    expect(plain.stderr).not.toContain(ESC);
    const forced = await runCli(['validate', bad], { env: { FORCE_COLOR: '1', NO_COLOR: undefined } });
    expect(forced.stderr).toContain(ESC);
    const no = await runCli(['validate', bad], { env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
    expect(no.stderr).not.toContain(ESC);
    expect(no.stderr).toMatch(/invalid suite/);
  });

  it('the rule itself: a terminal colours, unless NO_COLOR (set and not empty) or TERM=dumb', () => {
    expect(colorEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(colorEnabled({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(colorEnabled({ isTTY: false }, { CI: 'true' })).toBe(false);
    expect(colorEnabled({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorEnabled({ isTTY: false }, { FORCE_COLOR: '0' })).toBe(false);
  });
});
