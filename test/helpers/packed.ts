/**
 * blackout packed and installed as a user does: `npm pack` of this checkout
 * (prepack builds dist/), then `npm install -g` of the tarball on a private
 * prefix. Used by test/cli/pack.test.ts and the startup benchmark.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lab.ts';

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

// the npm a user has: the npm_* variables of an `npm test` or `npm run bench` around us stay out
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

export function run(cmd: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<Result> {
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

export interface Packed {
  /** the tarball */
  tgz: string;
  /** the npm prefix it was installed into; the command is bin/blackout under it */
  prefix: string;
  blackout: string;
  pack: Result;
  install: Result;
  /** removes the tarball, the prefix and (when it was not there before) the checkout's dist/ */
  cleanup(): void;
}

export async function packAndInstall(): Promise<Packed> {
  const distExisted = existsSync(join(ROOT, 'dist'));
  const packDir = mkdtempSync(join(tmpdir(), 'blackout-pack-'));
  const prefix = mkdtempSync(join(tmpdir(), 'blackout-prefix-'));
  const cleanup = () => {
    rmSync(packDir, { recursive: true, force: true });
    rmSync(prefix, { recursive: true, force: true });
    // npm pack built dist/ in the checkout: leave the checkout as it was found
    if (!distExisted) rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
  };
  try {
    const pack = await run('npm', ['pack', '--pack-destination', packDir, '--silent'], ROOT, 300_000);
    const name = readdirSync(packDir).find((f) => /^blackout-.*\.tgz$/.test(f));
    if (pack.code !== 0 || !name) throw new Error(`npm pack failed (${pack.code}): ${pack.stderr.slice(-2000)}`);
    const tgz = join(packDir, name);
    // from the registry through the user's npm cache, with no install script run: blackout needs
    // none (koffi and esbuild ship their binaries), so it installs where npm runs only allowed
    // scripts; the one npm runs by default, the optional odbc addon's build, takes a minute or
    // more of this machine
    const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', tgz], packDir, 420_000);
    if (install.code !== 0) throw new Error(`npm install -g failed (${install.code}): ${install.stderr.slice(-2000)}`);
    return { tgz, prefix, blackout: join(prefix, 'bin', 'blackout'), pack, install, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}
