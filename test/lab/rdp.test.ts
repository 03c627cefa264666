/**
 * The rdp probe against the lab's xrdp: a real FreeRDP client under Xvfb.
 *
 *  - pure parts: XWD → PNG, FreeRDP log lines, the keepalive arithmetic;
 *  - up: the probe logs in and sees fresh frames (the desktop's clock);
 *  - one CLI run with two clients (different screen sizes, so two sessions):
 *    a 2 s cut stalls both; a 10 s cut is longer than the clients' policy
 *    (/timeout:3000 → dropped after ~7 s of silence): without auto-reconnect
 *    the client is kicked off (failed), with it the client reconnects to the
 *    same session (recovered);
 *  - a wrong certificate fingerprint is a preflight error (exit 2).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { inflateSync } from 'node:zlib';
import { createClock } from '../../src/core/clock.ts';
import { resolveTarget } from '../../src/run/resolve-target.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { rdp, expectedDropAfterMs, normaliseFingerprint, parseFreerdpLine, exitMeaning } from '../../src/probes/rdp.ts';
import type { ProbeContext, ProbeEvent } from '../../src/core/probe.ts';
import { parseXwdHeader, xwdToPng, isBlank } from '../../src/probes/shared/xwd-frame.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { labDown } from '../../src/lab/lab.ts';
import { run } from '../../src/transport/exec.ts';

const LAB = labName('xrdp1');

/** a tiny XWD image (header big-endian, pixels LSB first, 32 bpp) */
function xwd(width: number, height: number, pixel: (x: number, y: number) => number): Buffer {
  const name = Buffer.from('t\0');
  const headerSize = 100 + name.length;
  const h = Buffer.alloc(100);
  const fields = [headerSize, 7, 2, 24, width, height, 0, 0, 32, 0, 32, 32, width * 4, 4, 0xff0000, 0xff00, 0xff, 8, 256, 0, width, height, 0, 0, 0];
  fields.forEach((v, i) => h.writeUInt32BE(v, i * 4));
  const px = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) px.writeUInt32LE(pixel(x, y), (y * width + x) * 4);
  return Buffer.concat([h, name, px]);
}

describe('rdp probe: pure parts', () => {
  it('turns an XWD framebuffer into a PNG with the right pixels', () => {
    const img = xwd(3, 2, (x, y) => (x === 0 && y === 0 ? 0xff0000 : x === 2 && y === 1 ? 0x00ff80 : 0));
    const layout = parseXwdHeader(img);
    expect(layout).toMatchObject({ width: 3, height: 2, bitsPerPixel: 32, lsbFirst: true, pixelOffset: 102 });
    expect(isBlank(img, layout)).toBe(false);
    expect(
      isBlank(
        xwd(3, 2, () => 0),
        layout,
      ),
    ).toBe(true);
    const png = xwdToPng(img, layout);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    // IHDR then IDAT: inflate and check the rows (filter byte + RGB)
    const idatAt = png.indexOf('IDAT');
    const len = png.readUInt32BE(idatAt - 4);
    const raw = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + len));
    const row0 = [0, /* */ 255, 0, 0, /* */ 0, 0, 0, /* */ 0, 0, 0];
    const row1 = [0, /* */ 0, 0, 0, /* */ 0, 0, 0, /* */ 0, 255, 128];
    expect([...raw]).toEqual([...row0, ...row1]);
  });

  it('reads FreeRDP log lines, exit codes and its keepalive arithmetic', () => {
    expect(parseFreerdpLine('[00:42:45:877] [22521:22532] [INFO][com.freerdp.client.common] - Attempting reconnect (1 of 3)')).toEqual({
      level: 'INFO',
      tag: 'com.freerdp.client.common',
      message: 'Attempting reconnect (1 of 3)',
    });
    expect(parseFreerdpLine('Password: ')).toBeNull();
    expect(exitMeaning(131, null)).toBe('exit 131 (connection failed)');
    expect(exitMeaning(null, 'SIGTERM')).toBe('killed by SIGTERM');
    // keepalive fires at 5 s, 7 s, 9 s … of silence; the user timeout closes at the first firing past it
    expect(expectedDropAfterMs(9000)).toBe(9000);
    expect(expectedDropAfterMs(3000)).toBe(7000);
    expect(expectedDropAfterMs(10_000)).toBe(11_000);
    expect(normaliseFingerprint('sha256:' + 'AB'.repeat(32))).toBe('sha256:' + Array(32).fill('ab').join(':'));
  });

  it('rejects a malformed fingerprint in the suite', () => {
    const r = rdp.schema.safeParse({ name: 'x', kind: 'rdp', certFingerprint: 'sha1:00:11' });
    expect(r.success).toBe(false);
  });
});

describe('rdp probe against the lab', () => {
  const lab = useLab(LAB);

  it('up: logs in over TLS with the pinned certificate and sees the desktop clock change', async () => {
    const state = lab.state();
    expect(state.services.rdp).toMatchObject({ port: 3389, user: `bordp-${LAB}`, certFingerprint: expect.stringMatching(/^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/) });
    const pw = state.services.rdp!.passwordFile as string;
    expect(readFileSync(pw, 'utf8').trim().length).toBeGreaterThanOrEqual(20);
    expect((await import('node:fs')).statSync(pw).mode & 0o077).toBe(0);

    const target = await resolveTarget('lab', { lab: LAB });
    const clock = createClock();
    const events: ProbeEvent[] = [];
    const attachments: Array<{ name: string; data: Buffer | string }> = [];
    const abort = new AbortController();
    const ctx: ProbeContext = {
      name: 'desk',
      trial: 0,
      clock,
      target,
      runDir: tempDir(),
      signal: abort.signal,
      emit: (e) => events.push({ ...e, t: e.t ?? clock.now() }),
      attach: (name, data) => {
        attachments.push({ name, data });
        return name;
      },
    };
    const config = rdp.schema.parse({ name: 'desk', kind: 'rdp' });
    const probe = rdp.create(config, ctx);
    await probe.open();
    const openedAt = clock.now();
    await new Promise((r) => setTimeout(r, 3000));
    abort.abort();
    await probe.close();

    expect(events.find((e) => e.type === 'session-open')).toMatchObject({ reconnect: false });
    const samples = events.filter((e) => e.type === 'sample' && e.t! >= openedAt).map((e) => e.t!);
    // the clock changes 4× a second: ~12 fresh frames in 3 s; allow for a loaded machine
    expect(samples.length).toBeGreaterThanOrEqual(6);
    const gaps = samples.slice(1).map((t, i) => t - samples[i]!);
    expect(Math.max(...gaps)).toBeLessThan(config.interval + config.tolerance);
    expect(events.some((e) => e.type === 'session-lost' || e.type === 'probe-error')).toBe(false);
    const shot = attachments.find((a) => a.name === 'session-open.png');
    expect(shot && Buffer.isBuffer(shot.data) && shot.data.subarray(1, 4).toString()).toBe('PNG');
    // the client's log never holds the password
    const log = String(attachments.find((a) => a.name === 'freerdp.log')?.data ?? '');
    expect(log).not.toContain(readFileSync(pw, 'utf8').trim());
  }, 60_000);

  describe('cuts (one run, two clients): 2 s, then 10 s against /timeout:3000', () => {
    let out = '';
    let code: number | null = null;
    let summary: {
      trials: Array<{ requestedMs: number; injected: { durationMs: number } | null; probes: Record<string, { outcome: string; reason: string; observedOutageMs: number | null; reconnects: number }> }>;
    };
    let events: BlackoutEvent[] = [];

    beforeAll(async () => {
      out = tempDir();
      const suite = writeSuite({
        name: 'rdp reconnect policy',
        target: 'lab',
        probes: [
          { name: 'rdp-off', kind: 'rdp', timeout: '3s' },
          // a different screen size: its own xrdp session (user + size)
          { name: 'rdp-on', kind: 'rdp', size: '640x480', timeout: '3s', autoReconnect: true, maxRetries: 5 },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s', '10s'],
        warmup: '2s',
        recovery: '25s',
      });
      const r = await runCli(['run', suite, '--lab', LAB, '--out', out], { timeoutMs: 110_000 });
      code = r.code;
      if (code !== 0) console.error(r.stdout, r.stderr);
      summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
      events = readFileSync(join(out, 'events.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as BlackoutEvent);
    }, 115_000);

    it('completes', () => {
      expect(code).toBe(0);
      expect(summary.trials).toHaveLength(2);
    });

    it('2 s cut: the frames freeze and resume in the same session (stalled)', () => {
      const t = summary.trials[0]!;
      for (const p of ['rdp-off', 'rdp-on']) {
        expect(t.probes[p], p).toMatchObject({ outcome: 'stalled', reconnects: 0 });
        expect(t.probes[p]!.observedOutageMs).toBeGreaterThan(1500);
      }
      const shots = events.filter((e) => e.type === 'attachment' && e.trial === 0 && e.probe === 'rdp-off').map((e) => (e as { name: string }).name);
      expect(shots).toEqual(expect.arrayContaining(['session-open.png', 'before-failure.png', 'after-recovery.png', 'freerdp.log']));
      for (const e of events) {
        if (e.type === 'attachment' && e.contentType === 'image/png') expect(readFileSync(join(out, e.path)).subarray(1, 4).toString()).toBe('PNG');
      }
    });

    it("10 s cut, auto-reconnect off: kicked off with FreeRDP's own words (failed)", () => {
      const r = summary.trials[1]!.probes['rdp-off']!;
      expect(r.outcome).toBe('failed');
      expect(r.reason).toMatch(/Network disconnect!.*Connection timed out/);
      const err = events.find((e) => e.type === 'probe-error' && e.probe === 'rdp-off' && e.trial === 1);
      expect(err).toMatchObject({ fatal: true, message: expect.stringMatching(/exit 131 \(connection failed\)/) });
    });

    it('10 s cut, auto-reconnect on: FreeRDP reconnects to the same session (recovered)', () => {
      const r = summary.trials[1]!.probes['rdp-on']!;
      expect(r.outcome).toBe('recovered');
      expect(r.reconnects).toBe(1);
      const notes = events.filter((e) => e.type === 'probe-note' && e.probe === 'rdp-on' && e.trial === 1).map((e) => (e as { message: string }).message);
      expect(notes).toEqual(expect.arrayContaining([expect.stringMatching(/^FreeRDP: Attempting reconnect \(1 of 5\)/)]));
      // the same xrdp session: sesman created one session per screen size in the whole run, and reconnected the rest
      const sesman = readFileSync(`/run/blackout/labs/${LAB}/rdp/sesman.log`, 'utf8');
      const created = sesman.split('\n').filter((l) => l.includes('Starting session:'));
      expect(created).toHaveLength(2); // 800x600 (the up test, then rdp-off) and 640x480 (rdp-on), never a new one
      expect(created.filter((l) => l.includes('width 640, height 480'))).toHaveLength(1);
      expect((sesman.match(/reconnected session/g) ?? []).length).toBeGreaterThanOrEqual(3);
      const policy = (events[0] as { probes: Array<{ name: string; policy: Record<string, unknown> }> }).probes.find((p) => p.name === 'rdp-on')!.policy;
      expect(policy).toMatchObject({ reconnect: 'auto-reconnect', maxRetries: 5, tcpAckTimeoutMs: 3000, dropsAfterSilenceMs: 7000 });
    });
  });

  it('a wrong certificate fingerprint is a preflight error (exit 2), nothing injected', async () => {
    const out = tempDir();
    const suite = writeSuite({
      name: 'rdp wrong certificate',
      target: 'lab',
      probes: [{ name: 'desk', kind: 'rdp', certFingerprint: `sha256:${Array(32).fill('5A').join(':')}` }],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s'],
    });
    const r = await runCli(['run', suite, '--lab', LAB, '--out', out], { timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    const events = readFileSync(join(out, 'events.jsonl'), 'utf8');
    expect(events).not.toContain('"type":"cut"');
    expect(r.stdout + r.stderr).toMatch(/certificate rejected: it does not match the pinned fingerprint sha256:5a:5a/);
    expect(existsSync(join(out, 'summary.json'))).toBe(true);
  }, 60_000);

  it('lab down removes the lab user and every xrdp process', async () => {
    const state = lab.state();
    const pids = (await run('ip', ['netns', 'pids', state.targetNs])).stdout.trim().split('\n').map(Number);
    const removed = await labDown(LAB);
    expect(removed).toContain(`user bordp-${LAB}`);
    expect((await run('id', ['-u', `bordp-${LAB}`], { allowFail: true })).code).not.toBe(0);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});
