/**
 * blackout as a user installs it: `npm pack` (prepack builds dist/), the
 * tarball installed with `npm install -g` on a private prefix, and the
 * installed command run from a folder with no repository around: --help
 * without any npm warning, `init` against a local echo server, `run` of a
 * TypeScript suite that imports `defineSuite` from 'blackout' (a command
 * injector freezing that server), and the odbc probe's clear preflight error
 * where its optional native addon was not built.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/lab.ts';
import { startLocalEcho, type LocalEcho } from '../helpers/local-echo.ts';
import { packAndInstall, run, type Packed } from '../helpers/packed.ts';

const dirs: string[] = [];
let packed: Packed | undefined;
let prefix = '';
let home = ''; // a folder with no repository around: the user's working directory
let blackout = '';
let echo: LocalEcho;

beforeAll(async () => {
  echo = await startLocalEcho();
  home = mkdtempSync(join(tmpdir(), 'blackout-user-'));
  dirs.push(home);
  packed = await packAndInstall();
  ({ prefix, blackout } = packed);
  console.log(`pack: npm pack ${(packed.pack.ms / 1000).toFixed(1)} s, npm install -g ${(packed.install.ms / 1000).toFixed(1)} s`);
  const listed = spawnSync('tar', ['tzf', packed.tgz], { encoding: 'utf8' }).stdout.split('\n');
  // what a user needs and nothing of the repository's own
  expect(listed).toContain('package/dist/index.d.ts');
  expect(listed).toContain('package/dist/lab/vm-watchdog.js');
  expect(listed).toContain('package/dist/probes/shared/odbc-client.mjs');
  expect(listed).toContain('package/servers/echo-server.mjs');
  expect(listed).toContain('package/suites/lab-cable-pull.yaml');
  expect(listed).toContain('package/schema/suite.schema.json'); // the bundled suites name it on their first line
  expect(listed).toContain('package/LICENSE');
  expect(listed.filter((f) => /^package\/(src|test|bench|node_modules)\//.test(f) || f.endsWith('.npmrc'))).toEqual([]);
  expect(existsSync(join(prefix, 'lib', 'node_modules', 'blackout', 'dist', 'cli', 'cli.js'))).toBe(true);
}, 700_000);

afterAll(async () => {
  await echo?.stop();
  packed?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the installed package', () => {
  it('--help and --version: exit 0, no npm warning, startup measured', async () => {
    const help = await run(blackout, ['--help'], home, 60_000);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: blackout/);
    expect(help.stderr).not.toMatch(/npm warn|Unknown (project|env|user) config/i);
    expect(help.stderr).toBe('');
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const v = await run(blackout, ['--version'], home, 60_000);
      expect(v.code).toBe(0);
      expect(v.stdout.trim()).toBe(version);
      times.push(v.ms);
    }
    times.sort((a, b) => a - b);
    console.log(`pack: startup of the compiled install (blackout --version): median ${times[1]!.toFixed(0)} ms of ${times.map((t) => t.toFixed(0)).join(', ')}`);
  });

  it('init writes a starter suite the installed blackout validates', async () => {
    const out = join(home, 'init-suite.yaml');
    const r = await run(blackout, ['init', '127.0.0.1', '--ports', String(echo.port), '--only-ports', '--out', out], home, 60_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const suite = parseYaml(readFileSync(out, 'utf8')) as { target: { host: string }; probes: Array<{ kind: string; port?: number }> };
    expect(suite.target.host).toBe('127.0.0.1');
    expect(suite.probes).toContainEqual(expect.objectContaining({ kind: 'tcp', port: echo.port }));
    const v = await run(blackout, ['validate', out], home, 60_000);
    expect(v.code, v.stderr + v.stdout).toBe(0);
  });

  it('runs a TypeScript suite importing defineSuite from blackout, and writes its reports', async () => {
    const file = join(home, 'suite.ts');
    writeFileSync(
      file,
      `import { defineSuite } from 'blackout';
export default defineSuite({
  name: 'installed',
  target: { host: '127.0.0.1', echo: { port: ${echo.port} } },
  probes: [{ name: 'echo', kind: 'tcp', interval: '100ms', readTimeout: '5s' }],
  injector: { kind: 'command', cut: ['kill', '-STOP', '${echo.pid}'], restore: ['kill', '-CONT', '${echo.pid}'], grace: '1s' },
  blackouts: ['1s'],
  warmup: '500ms',
  recovery: '3s',
  cooldown: 0,
  expect: { echo: { survives: '1s' } },
});
`,
    );
    const out = join(home, 'run');
    const r = await run(blackout, ['run', file, '--out', out, '--no-live', '--wait', '300'], home, 120_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { passed: boolean; trials: Array<{ probes: Record<string, { outcome: string }> }> };
    expect(summary.passed).toBe(true);
    expect(summary.trials[0]?.probes.echo?.outcome).toMatch(/transparent|stalled/);
    for (const f of ['events.jsonl', 'junit.xml', 'summary.md', 'report.html']) expect(existsSync(join(out, f)), f).toBe(true);
  });

  it('the odbc probe without its optional addon: a preflight error that says what is missing, exit 2', async () => {
    const file = join(home, 'odbc.yaml');
    writeFileSync(
      file,
      `name: odbc without the addon
target: { host: 127.0.0.1 }
probes:
  - { name: db, kind: odbc, port: ${echo.port}, database: app, user: app, passwordEnv: PK_ODBC_PW, loginTimeout: 2s }
injector: { kind: command, cut: ['true'], restore: ['true'] }
blackouts: [1s]
`,
    );
    const r = await run(blackout, ['run', file, '--out', join(home, 'odbc-run'), '--no-live', '--wait', '300'], home, 120_000, { PK_ODBC_PW: 'x' });
    expect(r.code, r.stderr + r.stdout).toBe(2);
    expect(r.stderr).toMatch(/preflight failed, nothing was injected: db: .*the odbc probe needs the npm package "odbc" with its native addon/);
  });
});
