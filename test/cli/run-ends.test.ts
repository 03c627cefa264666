/**
 * Runs that always finish, and say how: the CLI's exit codes end to end,
 * against a real TCP echo server on 127.0.0.1 (no lab), with the `command`
 * injector freezing it (kill -STOP) or failing on purpose.
 *
 *  - 1: an expectation did not hold (the probe really lost its session);
 *  - 3: the cut command failed mid-run; the target was restored, the run ended
 *       with run-end, its events and reports;
 *  - 4: the cut failed and the restore after it failed too: never swallowed;
 *  - a reader that goes away mid-run stops the printing, not the run.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEvents } from '../../src/core/event-log.ts';
import { ROOT, runCli, tempDir, writeSuite } from '../helpers/lab.ts';
import { startLocalEcho, type LocalEcho } from '../helpers/local-echo.ts';

let echo: LocalEcho;
const cleanup: string[] = [];
beforeAll(async () => {
  echo = await startLocalEcho();
});
afterAll(async () => {
  await echo.stop();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

function suite(injector: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const file = writeSuite({
    name: 'run ends',
    target: { host: '127.0.0.1', echo: { port: echo.port } },
    probes: [{ name: 'echo', kind: 'tcp', interval: '100ms', readTimeout: '400ms' }],
    injector: { kind: 'command', grace: '1s', ...injector },
    blackouts: ['1500ms'],
    warmup: '600ms',
    recovery: '3s',
    cooldown: 0,
    ...extra,
  });
  cleanup.push(dirname(file));
  const out = tempDir();
  cleanup.push(out);
  return { file, out: join(out, 'run') };
}

describe('exit codes end to end', () => {
  it('1: an expectation that did not hold (a frozen echo server makes the probe fail)', async () => {
    const { file, out } = suite({ cut: ['kill', '-STOP', String(echo.pid)], restore: ['kill', '-CONT', String(echo.pid)] }, { expect: { echo: { survives: '1500ms' } } });
    const r = await runCli(['run', file, '--out', out, '--no-live', '--wait', '300']);
    expect(r.code, r.stderr + r.stdout).toBe(1);
    expect(r.stdout.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/✗ echo did not survive a 1\.5 s blackout \(failed/);
    const { events } = readEvents(join(out, 'events.jsonl'));
    // the run itself completed: only the expectation failed
    expect(events.at(-1)).toMatchObject({ type: 'run-end', exitCode: 0 });
    expect(events.some((e) => e.type === 'session-lost' && e.probe === 'echo')).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { passed: boolean };
    expect(summary.passed).toBe(false);
  });

  it('3: the cut command fails mid-run: the target is restored, run-end and reports are written', async () => {
    const restoredMarker = join(tempDir('blackout-mark-'), 'restored');
    cleanup.push(dirname(restoredMarker));
    const { file, out } = suite({ cut: ['sh', '-c', 'echo cut refused >&2; exit 7'], restore: ['touch', restoredMarker] });
    const r = await runCli(['run', file, '--out', out, '--no-live', '--wait', '300']);
    expect(r.code, r.stderr + r.stdout).toBe(3);
    expect(r.stderr).toMatch(/the injector failed \(exit 3\); the target was restored/);
    expect(existsSync(restoredMarker)).toBe(true);
    const { events } = readEvents(join(out, 'events.jsonl'));
    const err = events.find((e) => e.type === 'injector-error');
    expect(err).toMatchObject({ step: 'cut', restored: true });
    expect(err && 'message' in err ? err.message : '').toMatch(/cut refused/);
    expect(events.some((e) => e.type === 'restore' && e.reason === 'error')).toBe(true);
    expect(events.some((e) => e.type === 'trial-end')).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'run-end', exitCode: 3 });
    for (const f of ['summary.json', 'report.html', 'junit.xml']) expect(existsSync(join(out, f)), f).toBe(true);
    const summary = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(summary).toMatch(/the injector failed \(cut: .*cut refused/);
  });

  it('4: a failed restore after a failed cut is never swallowed', async () => {
    const { file, out } = suite({ cut: ['false'], restore: ['sh', '-c', 'echo restore refused >&2; exit 9'] });
    const r = await runCli(['run', file, '--out', out, '--no-live', '--wait', '300']);
    expect(r.code, r.stderr + r.stdout).toBe(4);
    expect(r.stderr).toMatch(/restore failed too \(exit 4\)/);
    const { events } = readEvents(join(out, 'events.jsonl'));
    const err = events.find((e) => e.type === 'injector-error');
    expect(err).toMatchObject({ step: 'cut', restored: false });
    expect(err && 'restoreError' in err ? err.restoreError : '').toMatch(/restore refused/);
    expect(events.at(-1)).toMatchObject({ type: 'run-end', exitCode: 4 });
    expect(existsSync(join(out, 'summary.json'))).toBe(true);
    // its watchdog keeps retrying the restore after the run, the last resort (until the next run on the
    // target heals it): find it in the watchdog journal, check it runs, and end it by its PID
    const { journalFile } = await import('../../src/injectors/shared/remote.ts');
    const journal = JSON.parse(readFileSync(journalFile(`command local ${JSON.stringify(['sh', '-c', 'echo restore refused >&2; exit 9'])}`), 'utf8')) as Array<{ id: string; runDir: string }>;
    const dog = journal.find((e) => e.runDir === out);
    expect(dog, JSON.stringify(journal)).toBeDefined();
    const pid = Number(dog!.id);
    expect(() => process.kill(pid, 0)).not.toThrow();
    process.kill(pid, 'SIGTERM');
  });

  it('a reader that goes away mid-run (stdout and stderr closed) stops the printing, not the run: it restores, ends and exits', async () => {
    const { file, out } = suite({ cut: ['kill', '-STOP', String(echo.pid)], restore: ['kill', '-CONT', String(echo.pid)] }, { blackouts: ['1500ms', '1s'] });
    const child = spawn(process.execPath, [join(ROOT, 'bin/blackout.mjs'), 'run', file, '--out', out, '--no-live', '--wait', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // the first line printed: then both pipes are closed under the run, as when `blackout run | head -1` or a CI step's reader ends
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    child.stderr.destroy();
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 60_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    // the old code printed each EPIPE to the broken stream, raising another: a core spun until it was killed
    expect(code, `still running after ${Date.now() - started} ms`).toBe(0);
    const { events } = readEvents(join(out, 'events.jsonl'));
    expect(events.filter((e) => e.type === 'restore')).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ type: 'run-end', exitCode: 0 });
    expect(existsSync(join(out, 'summary.json'))).toBe(true);
  });

  it('--help documents the exit codes', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.stdout).toMatch(/3\s+the injector failed mid-run/);
    expect(r.stdout).toMatch(/4\s+the injector failed and so did the restore/);
    expect(readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8')).toMatch(/`3` the injector failed mid-run/);
  });
});
