/**
 * Live metrics during a real cut, through the real CLI against the real lab:
 * `blackout run --metrics 127.0.0.1:0` is scraped every 100 ms while a 2 s
 * cable pull happens; the cut and the TCP session's stall appear and then
 * clear, a session with a 1 s TCP user timeout shows as lost, and after the
 * trial the observed outage is the report's. The same real run checks the
 * exit-code rule: its one broken expectation is the one failure summary.json,
 * junit.xml and Allure's JUnit reader count, and the process exits 1.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep } from '../../src/core/clock.ts';
import { ROOT, labName, tempDir, useLab, writeSuite } from '../helpers/lab.ts';
import { readSummary } from '../helpers/run-dir.ts';
import { parseOpenMetrics, value, type Sample } from '../helpers/openmetrics.ts';
import { allureRead } from '../helpers/allure-junit.ts';
import { TEST_OUTPUT } from '../helpers/fixtures.ts';

const LAB = labName('tmetric');
useLab(LAB);
const cleanup: string[] = [];
afterAll(() => {
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

describe('blackout run --metrics on the lab', () => {
  it('a scrape sees the cut and the stall appear and clear; the run exits 1 for its one broken expectation, as junit.xml and Allure say', async () => {
    const out = tempDir();
    const suite = writeSuite({
      name: 'metrics 2s',
      target: { lab: LAB },
      probes: [
        { name: 'ping', kind: 'icmp', interval: '10ms' },
        { name: 'echo', kind: 'tcp', interval: '100ms' },
        { name: 'echo-ut', kind: 'tcp', interval: '100ms', userTimeout: '1s' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s'],
      warmup: '1s',
      recovery: '10s',
      expect: { echo: { survives: '2s' }, 'echo-ut': { survives: '2s' } },
    });
    cleanup.push(out, dirname(suite));
    const child = spawn(process.execPath, [join(ROOT, 'bin/blackout.mjs'), 'run', suite, '--out', out, '--metrics', '127.0.0.1:0', '--metrics-linger', '2s'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    let done = false;
    void exited.then(() => (done = true));
    const killer = setTimeout(() => child.kill('SIGINT'), 150_000);
    const snaps: Array<{ at: number; text: string; m: Sample[] }> = [];
    try {
      let url: string | null = null;
      while (!url && !done) {
        url = /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(stdout)?.[1] ?? null;
        await sleep(50);
      }
      expect(url, stdout + stderr).not.toBeNull();
      while (!done) {
        try {
          const text = await (await fetch(url!)).text();
          snaps.push({ at: performance.now(), text, m: parseOpenMetrics(text) });
        } catch {
          // the run ended between two scrapes
        }
        await sleep(100);
      }
    } finally {
      clearTimeout(killer);
    }
    const code = await exited;
    const v = (s: (typeof snaps)[number], name: string, labels: Record<string, string> = {}) => value(s.m, name, labels);

    // the cut, with the plain TCP session stalled and the user-timeout one lost
    const midCut = snaps.findIndex((s) => v(s, 'blackout_cut_active') === 1 && v(s, 'blackout_probe_state', { probe: 'echo', state: 'stalled' }) === 1);
    expect(midCut, `no scrape saw the cut and the stall (${snaps.length} scrapes)`).toBeGreaterThanOrEqual(0);
    const s = snaps[midCut]!;
    expect(v(s, 'blackout_probe_state', { probe: 'ping', state: 'stalled' })).toBe(1);
    expect(v(s, 'blackout_blackout_requested_seconds')).toBe(2);
    expect(v(s, 'blackout_blackout_elapsed_seconds')).toBeGreaterThan(0);
    expect(v(s, 'blackout_probe_gap_seconds', { probe: 'echo' })).toBeGreaterThan(0.6);
    mkdirSync(TEST_OUTPUT, { recursive: true });
    writeFileSync(join(TEST_OUTPUT, 'metrics-mid-cut.txt'), s.text);
    expect(snaps.some((x) => v(x, 'blackout_cut_active') === 1 && v(x, 'blackout_probe_state', { probe: 'echo-ut', state: 'lost' }) === 1)).toBe(true);
    // … then cleared: the cut restored and the same TCP session answering again (after its retransmission backoff)
    const cleared = snaps.findIndex((x, i) => i > midCut && v(x, 'blackout_cut_active') === 0 && v(x, 'blackout_probe_state', { probe: 'echo', state: 'ok' }) === 1);
    expect(cleared, 'the stall never cleared').toBeGreaterThan(midCut);
    expect(v(snaps[cleared]!, 'blackout_blackout_elapsed_seconds')).toBeGreaterThanOrEqual(2);
    // after the trial: the observed outage per probe, the report's own
    const summary = readSummary<any>(out);
    const last = snaps.at(-1)!;
    expect(v(last, 'blackout_last_finished_trial')).toBe(0);
    const echo = summary.trials[0].probes.echo;
    expect(echo.outcome).toBe('stalled');
    expect(v(last, 'blackout_probe_observed_outage_seconds', { probe: 'echo' })).toBeCloseTo(echo.observedOutageMs / 1000, 3);
    expect(v(last, 'blackout_probe_outcome', { probe: 'echo-ut', outcome: summary.trials[0].probes['echo-ut'].outcome })).toBe(1);
    expect(v(last, 'blackout_probe_samples_total', { probe: 'ping' })).toBeGreaterThan(100);

    // the exit code rule on a real run: one broken expectation, one failure everywhere
    expect(code, stdout + stderr).toBe(1);
    expect(summary.exitCode).toBe(1);
    expect(summary.tests).toMatchObject({ failed: 1, errors: 0 });
    expect(summary.tests.cases.find((c: any) => c.status === 'failed').name).toBe('expect echo-ut survives 2 s');
    const junitDir = join(out, 'junit-only');
    mkdirSync(junitDir);
    writeFileSync(join(junitDir, 'junit.xml'), readFileSync(join(out, 'junit.xml')));
    const read = await allureRead(junitDir, join(out, 'allure-from-junit'));
    expect(read.total).toMatchObject({ failed: 1, broken: 0, total: summary.tests.tests });
  }, 240_000);
});
