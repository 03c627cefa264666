/**
 * libvirt for real: Debian's libvirtd (qemu driver) runs a TCG guest on the lab
 * bridge; `blackout run` with the libvirt adapter does a real `virsh save` /
 * `virsh restore` (quick migration) and `virsh suspend` / `resume`, measured by
 * ping and a TCP session to the guest, and compared with the guest's own pause
 * (how far its clock fell behind the host's). Then kill -9 of the harness
 * during a save-mode blackout: the detached watchdog restores the guest.
 */
import { readFileSync, existsSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardLeakCount } from '../../src/lab/lab.ts';
import { buildGuest, guestClock, startGuest, startLibvirtd, type Libvirtd } from '../helpers/libvirt.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { eventsSoFar } from '../helpers/run-dir.ts';
import type { BlackoutEvent, EventOf } from '../../src/core/events.ts';

const lab = useLab(labName('alv'));
let lv: Libvirtd;
let addr = '';
// the guard's counter may carry packets from an earlier lab with the same index (the guard table outlives it): compare deltas
let leak0 = 0;
const DOM = 'alv-guest';

beforeAll(async () => {
  const s = lab.state();
  leak0 = await guardLeakCount(s);
  const guest = await buildGuest();
  lv = await startLibvirtd(s);
  addr = `${s.prefix}.3`;
  await startGuest(lv, guest, { name: DOM, address: addr, mac: '52:54:00:bd:a1:03', bridge: s.bridge });
}, 150_000);
afterAll(async () => {
  await lv?.stop();
});

interface Summary {
  trials: Array<{
    injected: { cutAt: number; restoredAt: number; durationMs: number } | null;
    probes: Record<string, { outcome: string; observedOutageMs: number | null }>;
  }>;
}

const suite = (mode: string, blackout: string, extra: Record<string, unknown> = {}) =>
  writeSuite({
    name: `libvirt ${mode}`,
    target: { host: addr, echo: { port: 7 } },
    probes: [
      { name: 'ping', kind: 'icmp', interval: '10ms' },
      { name: 'echo', kind: 'tcp', interval: '100ms' },
    ],
    injector: { kind: 'libvirt', uri: lv.uri, domain: DOM, mode, saveFile: join(lv.dir, `${DOM}.save`), ...extra },
    blackouts: [blackout],
    warmup: '1s',
    recovery: '15s',
  });

/**
 * One blackout run; returns its summary figures and the guest's own pause:
 * how far the guest's clock fell behind the host's between the start of the
 * warm-up and the restore, less the drift the guest's clock shows under the
 * same load with no pause (measured from before the run to the warm-up).
 */
async function measured(mode: string, blackout: string) {
  const out = tempDir();
  const events = join(out, 'events.jsonl');
  const seen = async (needle: string) => {
    const end = Date.now() + 60_000;
    while (Date.now() < end && !(existsSync(events) && readFileSync(events, 'utf8').includes(needle))) await new Promise((r) => setTimeout(r, 10));
  };
  const a = await guestClock(addr);
  const r0 = runCli(['run', suite(mode, blackout), '--out', out, '--no-live'], { timeoutMs: 90_000 });
  await seen('"phase":"warmup"');
  const b = await guestClock(addr);
  await seen('"type":"restore"');
  const c = await guestClock(addr);
  const r = await r0;
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const lag = (x: typeof a, y: typeof a) => y.hostMs - x.hostMs - (y.guestS - x.guestS) * 1000;
  // the guest's clocksource is the HPET (clocksource=hpet): QEMU's virtual clock, which stops
  // exactly while the guest is stopped and does not lose time when the vCPU is starved
  const driftRate = lag(a, b) / (b.hostMs - a.hostMs);
  const guestPauseMs = lag(b, c);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
  const t = summary.trials[0]!;
  const log = eventsSoFar(out);
  const figures = {
    mode,
    blackout,
    injectedMs: t.injected!.durationMs,
    // from the start of the suspend and of the restore/resume call to its instant (libvirt's event, else the
    // call's return): the guest stopped and ran again somewhere inside, before the event
    cutCallMs: callMs(log, 'cut'),
    restoreCallMs: callMs(log, 'restore'),
    // save mode: how long `virsh save` took, after the suspend
    saveMs: Math.round(Number(detailOf(log, 'cut').saveMs ?? 0)),
    // the instants are libvirt's lifecycle events; how long after each the call returned
    cutFrom: detailOf(log, 'cut').instantFrom,
    cutReturnedAfterMs: Math.round(Number(detailOf(log, 'cut').callReturnedAfterMs)),
    restoreFrom: detailOf(log, 'restore').instantFrom,
    restoreReturnedAfterMs: Math.round(Number(detailOf(log, 'restore').callReturnedAfterMs)),
    guestPauseMs: Math.round(guestPauseMs),
    guestDriftPct: Math.round(driftRate * 1000) / 10,
    pingOutageMs: t.probes.ping!.observedOutageMs,
    echo: t.probes.echo!.outcome,
    echoOutageMs: t.probes.echo!.observedOutageMs,
  };
  writeFileSync(join(out, 'figures.json'), JSON.stringify(figures, null, 2));
  console.log(`libvirt ${JSON.stringify(figures)}`);
  return { log, figures };
}

/** how long the call behind the run's cut or restore event took (its `before` to its instant) */
function callMs(log: BlackoutEvent[], type: 'cut' | 'restore'): number {
  const e = log.find((x): x is EventOf<'cut' | 'restore'> => x.type === type);
  return Math.round(e!.t - e!.before);
}

function detailOf(log: BlackoutEvent[], type: 'cut' | 'restore'): Record<string, unknown> {
  return log.find((x): x is EventOf<'cut' | 'restore'> => x.type === type)?.detail ?? {};
}

/** what ping saw around the cut and the restore (ms from the cut: seq and round trip), for a failure's message */
function pingTimeline(log: BlackoutEvent[]): string {
  const cut = log.find((e) => e.type === 'cut')?.t ?? 0;
  const restore = log.find((e) => e.type === 'restore')?.t ?? 0;
  const pings = log.filter((e): e is EventOf<'sample'> => e.type === 'sample' && e.probe === 'ping');
  const before = pings.filter((e) => e.t <= cut).slice(-5);
  const after = pings.filter((e) => e.t > cut).slice(0, 25);
  const rtts = pings.filter((e) => e.t <= cut).map((e) => e.latencyMs ?? 0);
  const fmt = (e: EventOf<'sample'>) => `${(e.t - cut).toFixed(1)}:#${e.seq}/${e.latencyMs}`;
  return `restore at +${(restore - cut).toFixed(1)} ms; max rtt before the cut ${Math.max(...rtts)} ms; pings ${before.map(fmt).join(' ')} | ${after.map(fmt).join(' ')}`;
}

describe('libvirt adapter against a real libvirtd', () => {
  it('the guard saw no lab packet leave', async () => {
    expect(await guardLeakCount(lab.state())).toBe(leak0);
  });

  it('save/restore: a real quick migration; the guest paused as long as the injected window', async () => {
    const { log, figures } = await measured('save', '2s');
    // the injected window runs from libvirt's "Suspended" event to its "Resumed" event, heard by a listener
    // (`virsh restore` returns later: 1.0 s later once, under load)
    expect(figures.cutFrom).toBe('state-change event');
    expect(figures.restoreFrom).toBe('state-change event');
    expect(figures.restoreReturnedAfterMs).toBeGreaterThanOrEqual(0);
    expect(figures.injectedMs).toBeGreaterThan(2000);
    // and no longer than its parts: the 2 s asked for, or the suspend call's rest after "Suspended" and the save
    // if they take longer (the restore waits for the save), then the restore call up to "Resumed"; 1.5 s for the
    // harness's own steps between them (the watchdog's re-arm). A fixed 8 s bound failed under load at 8.3 s.
    const heldMs = Math.max(2000, figures.cutReturnedAfterMs + figures.saveMs);
    expect(figures.injectedMs, JSON.stringify(figures)).toBeLessThan(heldMs + figures.restoreCallMs + 1500);
    // the guest's clock stood still that long (its uptime has 10 ms steps; the reads add a little)
    // the guest's uptime has 10 ms steps and is read over TCP from a TCG guest, whose clock also lags when
    // the host's 2 cores are busy: a loose bound here; the figures are printed and kept in figures.json
    expect(Math.abs(figures.guestPauseMs - figures.injectedMs)).toBeLessThan(300 + 0.15 * figures.injectedMs);
    // ping's outage is the injected window: the requests the guest's tap device held while QEMU loaded the
    // saved state come back all at once (round trips over a second) and count from when the guest ran again
    // (the guest stopped inside the suspend call, before its event: up to that much before the window starts)
    expect(Math.abs(figures.pingOutageMs! - figures.injectedMs), pingTimeline(log)).toBeLessThan(300 + figures.cutCallMs);
    expect(['stalled', 'transparent']).toContain(figures.echo);
    const events = JSON.stringify(log);
    expect(events).toMatch(/"saveMs":\d/);
    expect(events).toMatch(/"restoreMs":\d/);
    expect(existsSync(join(lv.dir, `${DOM}.save`))).toBe(false); // removed after the restore
    expect((await lv.virsh('domstate', DOM)).trim()).toBe('running');
    expect(await guardLeakCount(lab.state())).toBe(leak0);
  });

  it('suspend/resume: a pause', async () => {
    const { log, figures } = await measured('suspend', '1s');
    expect([figures.cutFrom, figures.restoreFrom]).toEqual(['state-change event', 'state-change event']);
    expect(figures.injectedMs).toBeGreaterThan(800);
    expect(figures.injectedMs).toBeLessThan(1600);
    expect(Math.abs(figures.guestPauseMs - figures.injectedMs)).toBeLessThan(300 + 0.15 * figures.injectedMs);
    // the guest stopped inside the suspend call and ran again inside the resume call, before their events (under
    // load either call took a few hundred ms: once 250 ms, and ping and the guest's clock both saw that much more)
    expect(Math.abs(figures.pingOutageMs! - figures.injectedMs), pingTimeline(log)).toBeLessThan(200 + figures.cutCallMs + figures.restoreCallMs);
    expect(listeners()).toEqual([]); // the listener ended with the trial
  });

  it('kill -9 of the harness after the save: the watchdog restores the guest from the file', async () => {
    const out = tempDir();
    let pid = 0;
    // 6 s: the save (~2 s here) must be over well before the harness would restore, so the kill lands mid-blackout
    const running = runCli(['run', suite('save', '6s', { grace: '2s' }), '--out', out, '--no-live'], { onSpawn: (p) => (pid = p), timeoutMs: 60_000 });
    const events = join(out, 'events.jsonl');
    const end = Date.now() + 40_000;
    while (Date.now() < end && !(existsSync(events) && readFileSync(events, 'utf8').includes('"type":"cut"'))) await new Promise((r) => setTimeout(r, 50));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    await running;
    // saved: the guest does not run (libvirt may still list the transient domain for a moment while QEMU exits)
    const state = async () => ((await lv.virsh('list', '--name')).includes(DOM) ? (await lv.virsh('domstate', DOM)).trim() : 'gone');
    const afterKill = await state();
    console.log(`right after kill -9: domain ${afterKill}`);
    expect(afterKill).not.toBe('running');
    expect(existsSync(join(lv.dir, `${DOM}.save`))).toBe(true);
    expect(readFileSync(events, 'utf8')).not.toContain('"type":"restore"');
    while (Date.now() - killedAt < 20_000 && (await state()) !== 'running') await new Promise((r) => setTimeout(r, 200));
    expect((await lv.virsh('domstate', DOM)).trim()).toBe('running');
    expect(Date.now() - killedAt).toBeLessThan(12_000); // the deadline (6 s + 2 s after arming) plus the restore
    await guestClock(addr); // and it answers again
    // the watchdog removes the file once `virsh restore` has returned (a moment after the domain runs)
    const gone = Date.now() + 5000;
    while (Date.now() < gone && existsSync(join(lv.dir, `${DOM}.save`))) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(join(lv.dir, `${DOM}.save`))).toBe(false);
    expect(await guardLeakCount(lab.state())).toBe(leak0);
  });

  it("the trial's state-change listener is gone after a run, and after a kill -9 once libvirtd is", async () => {
    // the killed run's listener ends itself (its lifetime, or its libvirtd going away) and removes its file
    await lv.stop();
    const end = Date.now() + 10_000;
    while (Date.now() < end && listeners().length) await new Promise((r) => setTimeout(r, 100));
    expect(listeners()).toEqual([]);
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('blackout-events.'))).toEqual([]);
  });
});

/** the `virsh … event` listeners of this test's libvirtd that still run */
function listeners(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ');
      } catch {
        return '';
      }
    })
    .filter((c) => c.startsWith('virsh ') && c.includes(lv.uri) && c.includes('event --event lifecycle'));
}
