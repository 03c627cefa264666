/**
 * blackout as a user installs it: `npm pack` (prepack builds dist/), the
 * tarball installed with `npm install -g` on a private prefix, and the
 * installed command run from a folder with no repository around: --help
 * without any npm warning, `init` against a local echo server, `run` of a
 * TypeScript suite that imports `defineSuite` from 'blackout' (a command
 * injector freezing that server), and the odbc probe: its native addon
 * works in the install, and without the optional `odbc` package (where it
 * could not be built) the probe's preflight says what is missing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/lab.ts';
import { startLocalEcho, type LocalEcho } from '../helpers/local-echo.ts';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

// the npm a user has; npm_* variables of an `npm test` around this run stay out of it
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((res) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd, env: { ...cleanEnv, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

const dirs: string[] = [];
const temp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

let prefix = '';
let home = ''; // a folder with no repository around: the user's working directory
let blackout = '';
let echo: LocalEcho;
const distExisted = existsSync(join(ROOT, 'dist'));

beforeAll(async () => {
  echo = await startLocalEcho();
  const packDir = temp('blackout-pack-');
  prefix = temp('blackout-prefix-');
  home = temp('blackout-user-');
  blackout = join(prefix, 'bin', 'blackout');

  const pack = await run('npm', ['pack', '--pack-destination', packDir, '--silent'], ROOT, 240_000);
  expect(pack.code, pack.stderr).toBe(0);
  const tgz = readdirSync(packDir).find((f) => /^blackout-.*\.tgz$/.test(f));
  expect(tgz).toBeDefined();
  const listed = spawnSync('tar', ['tzf', join(packDir, tgz!)], { encoding: 'utf8' }).stdout.split('\n');
  // what a user needs and nothing of the repository's own
  expect(listed).toContain('package/dist/index.d.ts');
  expect(listed).toContain('package/dist/lab/vm-watchdog.js');
  expect(listed).toContain('package/dist/probes/shared/odbc-client.mjs');
  expect(listed).toContain('package/servers/echo-server.mjs');
  expect(listed).toContain('package/suites/lab-cable-pull.yaml');
  expect(listed).toContain('package/LICENSE');
  expect(listed.filter((f) => /^package\/(src|test|bench|node_modules)\//.test(f) || f.endsWith('.npmrc'))).toEqual([]);

  // the registry through the user's npm cache; install scripts stay blocked (npm's default)
  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(packDir, tgz!)], home, 420_000);
  console.log(`pack: npm pack ${(pack.ms / 1000).toFixed(1)} s, npm install -g ${(install.ms / 1000).toFixed(1)} s`);
  expect(install.code, install.stderr).toBe(0);
}, 700_000);

afterAll(async () => {
  await echo?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  // npm pack built dist/ in the checkout: leave the checkout as it was found
  if (!distExisted) rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
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

  it('the odbc probe: its addon works in the install; without the optional package, a preflight error that says what is missing', async () => {
    const file = join(home, 'odbc.yaml');
    // psqlODBC against the echo server: the driver itself answers (the server is no PostgreSQL)
    writeFileSync(
      file,
      `name: odbc in the install
target: { host: 127.0.0.1 }
probes:
  - { name: db, kind: odbc, port: ${echo.port}, database: app, user: app, passwordEnv: PK_ODBC_PW, loginTimeout: 2s }
injector: { kind: command, cut: ['true'], restore: ['true'] }
blackouts: [1s]
`,
    );
    const odbcRun = (n: number) => run(blackout, ['run', file, '--out', join(home, `odbc-run-${n}`), '--no-live', '--wait', '300'], home, 120_000, { PK_ODBC_PW: 'x' });
    const withAddon = await odbcRun(1);
    expect(withAddon.code, withAddon.stderr + withAddon.stdout).toBe(2);
    expect(withAddon.stderr).toMatch(/preflight failed, nothing was injected: db: \[08001\]/);
    // as where it could not be built (or npm ran no install script): the package gone from the install
    const pkg = join(prefix, 'lib', 'node_modules', 'blackout', 'node_modules', 'odbc');
    expect(existsSync(pkg)).toBe(true);
    renameSync(pkg, `${pkg}.off`);
    const without = await odbcRun(2);
    expect(without.code, without.stderr + without.stdout).toBe(2);
    expect(without.stderr).toMatch(/preflight failed, nothing was injected: db: .*the odbc probe needs the npm package "odbc" with its native addon/);
  });
});
