/**
 * The rdp probe's active mode against the lab's xrdp with a static desktop (the
 * second lab user's: a terminal running `cat`, no clock): the probe types a
 * character and erases it through the session, one step per interval, and the
 * time until the screen changes is its sample.
 *
 *  - a passive viewer of the static desktop sees no frames: a clear preflight
 *    error (exit 2), the reason active mode exists;
 *  - one run, two clients (different screen sizes, so two sessions), /timeout:5000:
 *    a 2 s cut stalls both (the typed character shows up after the restore, carried
 *    by the 3.0 s retransmission); a 9 s cut outlasts both ways the client
 *    loses a session: the ack timeout, 5 s after the first unacknowledged send,
 *    when an input step was in flight at the cut, and FreeRDP's keepalive
 *    otherwise (7 s of silence: the probe waits for the answer to its last
 *    step and sends nothing more). A 6 s cut fell between the two: once in ~20
 *    runs the step had been acknowledged just before the cut, and that client
 *    was never dropped. Without auto-reconnect the client is dropped (failed),
 *    with it the same session comes back and answers input again (recovered);
 *  - a wrong password with input configured: exit 2, nothing injected.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { rdp, xdotoolArgs } from '../../src/probes/rdp.ts';
import { rdpStaticUser } from '../../src/lab/services/rdp.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { expectPreflightFailure, message } from '../helpers/probes.ts';

const LAB = labName('xrdps');
const TYPE_AND_ERASE = [{ key: 'a' }, { key: 'BackSpace' }];

describe('rdp active mode (pure)', () => {
  it('validates input steps and states the active policy', () => {
    expect(rdp.schema.safeParse({ name: 'x', kind: 'rdp', input: [{ key: 'a;rm' }] }).success).toBe(false);
    expect(rdp.schema.safeParse({ name: 'x', kind: 'rdp', input: [] }).success).toBe(false);
    const c = rdp.schema.parse({ name: 'x', kind: 'rdp', input: [{ click: [20, 10] }, { key: 'Escape' }, { key: 'ctrl+alt+t' }], timeout: '3s' });
    expect(xdotoolArgs(c.input![0]!)).toEqual({ before: ['mousemove', '20', '10'], send: ['click', '1'] });
    expect(xdotoolArgs(c.input![1]!)).toEqual({ send: ['key', '--clearmodifiers', 'Escape'] });
    const p = rdp.policy(c);
    expect(p).toMatchObject({ tcpAckTimeoutMs: 3000, input: 'click 20,10, key Escape, key ctrl+alt+t' });
    // an active client has data in flight during a blackout: the idle keepalive arithmetic does not apply
    expect(p).not.toHaveProperty('dropsAfterSilenceMs');
  });
});

describe('rdp active mode against a static desktop', () => {
  useLab(LAB, { upTimeoutMs: 300_000 });
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  describe('cuts (one run, two clients): 2 s, then 9 s against /timeout:5000', () => {
    let out = '';
    let code: number | null = null;
    let summary: {
      trials: Array<{
        injected: { durationMs: number } | null;
        probes: Record<string, { outcome: string; reason: string; observedOutageMs: number | null; effectiveIntervalMs: number | null; reconnects: number; samples: number }>;
      }>;
    };
    let events: BlackoutEvent[] = [];

    beforeAll(async () => {
      out = tempDir();
      made.push(out);
      const suite = writeSuite({
        name: 'rdp static desktop',
        target: 'lab',
        probes: [
          { name: 'st', kind: 'rdp', user: rdpStaticUser(LAB), input: TYPE_AND_ERASE, interval: '500ms', timeout: '5s' },
          { name: 'st-arc', kind: 'rdp', user: rdpStaticUser(LAB), input: TYPE_AND_ERASE, interval: '500ms', timeout: '5s', size: '640x480', autoReconnect: true, maxRetries: 5 },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s', '9s'],
        warmup: '3s',
        recovery: '25s',
      });
      made.push(join(suite, '..'));
      const r = await runCli(['run', suite, '--lab', LAB, '--out', out, '--no-live'], { timeoutMs: 240_000 });
      code = r.code;
      if (code !== 0) console.error(r.stdout, r.stderr);
      summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
      events = readFileSync(join(out, 'events.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as BlackoutEvent);
    }, 250_000);

    /** what a probe went through in a trial (ms from the cut: sessions, notes, samples), for a failure's message */
    const storyOf = (probe: string, trial: number): string => {
      const cut = events.find((e) => e.type === 'cut' && e.trial === trial);
      const restore = events.find((e) => e.type === 'restore' && e.trial === trial);
      const at = (t: number) => `${((t - (cut?.t ?? 0)) / 1000).toFixed(2)}s`;
      const lines = events.filter((e) => 'trial' in e && e.trial === trial && 'probe' in e && e.probe === probe && e.type !== 'sample').map((e) => `${at(e.t)} ${e.type}: ${message(e)}`);
      const samples = events.filter((e) => e.type === 'sample' && e.probe === probe && e.trial === trial).map((e) => at(e.t));
      return [`restore at ${restore ? at(restore.t) : '–'}; samples at ${samples.join(' ')}`, ...lines].join('\n');
    };

    it('completes, and the desktop answered input in every steady state', () => {
      expect(code).toBe(0);
      expect(summary.trials).toHaveLength(2);
      const cut = events.find((e) => e.type === 'cut' && e.trial === 0)!;
      const samples = events.filter((e) => e.type === 'sample' && e.probe === 'st' && e.trial === 0 && e.t < cut.t);
      // the two answers that proved the session, then more through the 3 s warm-up, none far apart (one step at a
      // time, each waiting for its answer: 6 or more when idle, 4 in one run under load)
      expect(samples.length, storyOf('st', 0)).toBeGreaterThanOrEqual(3);
      expect(Math.max(...samples.slice(1).map((e, i) => e.t - samples[i]!.t)), storyOf('st', 0)).toBeLessThan(2000);
      // the latency of an answer: the time from the key to the changed screen (before the cut: no stall in it)
      expect(samples.every((e) => e.type === 'sample' && typeof e.latencyMs === 'number' && e.latencyMs >= 0 && e.latencyMs < 2000)).toBe(true);
      expect(message(events.find((e) => e.type === 'session-open' && e.probe === 'st'))).toMatch(/the desktop answers input/);
    });

    it('2 s cut: the typed character shows up after the restore, same session (stalled)', () => {
      const t = summary.trials[0]!;
      const cut = events.find((e) => e.type === 'cut' && e.trial === 0)!;
      const restore = events.find((e) => e.type === 'restore' && e.trial === 0)!;
      for (const p of ['st', 'st-arc']) {
        const r = t.probes[p]!;
        expect(r, p).toMatchObject({ outcome: 'stalled', reconnects: 0 });
        // no answer from shortly after the cut (one seen on the screen just then had left before it) to the restore
        const answers = events.filter((e) => e.type === 'sample' && e.probe === p && e.trial === 0).map((e) => e.t);
        expect(
          answers.filter((x) => x > cut.t + 500 && x < restore.t),
          `${p}: ${storyOf(p, 0)}`,
        ).toEqual([]);
        expect(answers.some((x) => x >= restore.t)).toBe(true);
        // the outage it measured is the window within its interval: the interval it kept, one step at a time
        // waiting for each answer (under load 570 ms against the 500 asked for), and 100 ms for reading the screen
        expect(r.observedOutageMs!, `${p}: ${storyOf(p, 0)}`).toBeGreaterThan(t.injected!.durationMs - r.effectiveIntervalMs! - 100);
      }
      const notes = events.filter((e) => e.type === 'probe-note' && e.probe === 'st' && e.trial === 0).map(message);
      expect(notes).toEqual(expect.arrayContaining([expect.stringMatching(/^no answer to input/), expect.stringMatching(/^the screen answered input after \d+ ms \(same session\)/)]));
    });

    it('9 s cut, auto-reconnect off: dropped (failed)', () => {
      const r = summary.trials[1]!.probes.st!;
      expect(r.outcome).toBe('failed');
      expect(r.reason).toMatch(/Network disconnect!/);
    });

    it('9 s cut, auto-reconnect on: the same session comes back and answers input (recovered)', () => {
      const r = summary.trials[1]!.probes['st-arc']!;
      expect(r.outcome, `${r.reason}\n${storyOf('st-arc', 1)}`).toBe('recovered');
      const reopened = events.filter((e) => e.type === 'session-open' && e.probe === 'st-arc' && e.trial === 1).map(message);
      expect(reopened.at(-1)).toMatch(/brought the session back; it answers input again/);
      const sesman = readFileSync(`/run/blackout/labs/${LAB}/rdp/sesman.log`, 'utf8');
      expect(sesman.split('\n').filter((l) => l.includes('Starting session:') && l.includes('width 640, height 480'))).toHaveLength(1);
    });
  });

  // after the cuts run: its 800x600 session already exists; connecting redraws it in a burst (and a fresh
  // one draws itself a few times as it starts), which must not count as a desktop that changes by itself
  it('a passive viewer of the static desktop sees no frames: preflight error, exit 2', async () => {
    await expectPreflightFailure(
      LAB,
      'rdp static passive',
      { name: 'passive', kind: 'rdp', user: rdpStaticUser(LAB), loginTimeout: '8s' },
      /no changing desktop within 8000 ms of connecting .*the desktop is static/,
    );
  });

  // (a wrong password is not one: with TLS security xrdp shows its own login dialog, and typing into
  // that dialog changes the screen too; NLA security refuses the credentials before any screen)
  it('a wrong port is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure(
      LAB,
      'rdp static wrong port',
      { name: 'badport', kind: 'rdp', user: rdpStaticUser(LAB), input: TYPE_AND_ERASE, port: 3390 },
      /RDP login failed: xfreerdp exit (131 \(connection failed\)|147 \(connect transport failed\))/,
    );
  });
});
