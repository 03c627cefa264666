/**
 * Test helpers: each test file brings up its own lab instance (own namespaces,
 * own subnet), so files can run in parallel without cutting each other's
 * target, and tears it down afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { stringify } from 'yaml';
import { labUp, labDown, type LabState } from '../../src/lab/lab.ts';

export const ROOT = resolve(import.meta.dirname, '../..');

/**
 * A test lab's name, with BLACKOUT_TEST_LAB_TAG appended when set: several
 * checkouts can then run the same test file on one machine at once, each on
 * its own lab (lab names are at most 16 characters).
 */
export function labName(base: string): string {
  const tag = process.env.BLACKOUT_TEST_LAB_TAG ?? '';
  if (!tag) return base;
  return `${base.slice(0, 16 - tag.length - 1)}-${tag}`;
}

export function useLab(name: string, opts: { upTimeoutMs?: number } = {}): { state: () => LabState } {
  let state: LabState | null = null;
  // `lab up` starts every lab server; on a machine loaded by parallel test files it can take minutes
  beforeAll(async () => {
    await labDown(name).catch(() => {});
    state = await labUp(name);
  }, opts.upTimeoutMs);
  afterAll(
    async () => {
      // a CLI run a timed-out test left behind may still hold the lab's lease: wait for it (bounded), then
      // tear the lab down anyway (the shared guard stays while that run could still send)
      await labDown(name, { waitMs: 30_000 }).catch(() => labDown(name, { force: true }));
    },
    Math.max(opts.upTimeoutMs ?? 0, 90_000),
  );
  return {
    state: () => {
      if (!state) throw new Error('lab not up');
      return state;
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** Runs the real CLI as a child process (as a user would). */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; onSpawn?: (pid: number) => void; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/blackout.mjs'), ...args], {
      env: { ...process.env, CI: 'true', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    opts.onSpawn?.(child.pid!);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr, pid: child.pid! });
    });
  });
}

/** Writes a suite object as YAML into a fresh temp folder; returns its path. */
export function writeSuite(suite: unknown, name = 'suite.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'blackout-suite-'));
  const path = join(dir, name);
  writeFileSync(path, typeof suite === 'string' ? suite : stringify(suite));
  return path;
}

export function tempDir(prefix = 'blackout-run-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
