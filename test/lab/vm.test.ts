/**
 * The real VM target (issue 5): a QEMU guest (TCG) booted in its own lab,
 * migrated live and "quick" for real, a harness killed -9 mid-migration, a
 * paused guest healed, and `vmDown` leaving nothing behind.
 *
 * Functional requirements checked here (not benchmarks): a live migration's
 * ping gap stays under 0.5 s; a quick migration emulating a VM whose model
 * downtime is ~5 s lasts within 15 % of the model from `stop` to `cont`; the
 * guest keeps its boot id across both. Every wait is bounded.
 */
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'ssh2';
import { createHash } from 'node:crypto';
import { createClock, sleep } from '../../src/core/clock.ts';
import { run } from '../../src/transport/exec.ts';
import { readLabState } from '../../src/lab/state.ts';
import { fetchBootId, isVmProcess, readVmState, vmDown, vmProcessPids, vmTap, vmTarget, vmUp, type VmState } from '../../src/lab/vm.ts';
import { healVm, journalPath, writeJournal } from '../../src/lab/vm-heal.ts';
import { connectQmp, pollMigration } from '../../src/transport/qmp.ts';
import { quickMigrationMs } from '../../src/analysis/migration-model.ts';
import { cablePull } from '../../src/injectors/cable-pull.ts';
import { qemuLive } from '../../src/injectors/qemu-live.ts';
import { qemuQuick } from '../../src/injectors/qemu-quick.ts';
import { consoleTail } from '../../src/injectors/shared/qemu-common.ts';
import type { InjectorContext } from '../../src/core/injector.ts';
import { nodeArgv } from '../../src/core/runtime.ts';
import { ROOT, useLab, labName } from '../helpers/lab.ts';

const LAB = labName('vmtest1');
const lab = useLab(LAB);
let vm: VmState;

beforeAll(async () => {
  await vmDown(LAB).catch(() => {});
  vm = await vmUp(lab.state(), { memoryMB: 128, bootTimeoutMs: 90_000 });
}, 150_000);

afterAll(async () => {
  // useLab's labDown follows; vmDown first so its own cleanup is exercised on failure too
  await vmDown(LAB).catch(() => {});
});

function context(infos: Array<Record<string, unknown>>): InjectorContext {
  const state = lab.state();
  const current = readVmState(state);
  if (!current) throw new Error('no VM');
  return {
    target: vmTarget(state, current),
    clock: createClock(),
    runDir: current.dir,
    log: () => {},
    info: (d) => infos.push(d),
  };
}

/** `ping -D -O -n -i 0.01` streamed; reply times (epoch ms) collected. */
function streamPing(address: string): { stop(): Promise<number[]> } {
  const child = spawn('ping', ['-D', '-O', '-n', '-i', '0.01', address], { stdio: ['ignore', 'pipe', 'ignore'] });
  const replies: number[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(line);
      if (m) replies.push(Number(m[1]) * 1000);
    }
  });
  return {
    async stop() {
      child.kill('SIGINT');
      await new Promise((r) => child.once('close', r));
      return replies;
    },
  };
}

function maxGap(times: number[]): number {
  let g = 0;
  for (let i = 1; i < times.length; i++) g = Math.max(g, (times[i] as number) - (times[i - 1] as number));
  return g;
}

/** One TCP session to the guest's echo service: a line every 50 ms, echo checked; records errors and the largest gap between echoes. */
function echoSession(address: string): { stop(): { maxGapMs: number; errors: string[]; echoes: number } } {
  const errors: string[] = [];
  let echoes = 0;
  let last = Date.now();
  let maxGapMs = 0;
  let seq = 0;
  let buf = '';
  const s: Socket = connect({ host: address, port: 7 });
  s.setNoDelay(true);
  s.on('error', (e) => errors.push(e.message));
  s.on('close', () => errors.push('closed'));
  s.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      buf = buf.slice(nl + 1);
      const now = Date.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      echoes++;
    }
  });
  const timer = setInterval(() => s.write(`line ${seq++}\n`), 50);
  return {
    stop() {
      clearInterval(timer);
      s.removeAllListeners('close');
      s.destroy();
      return { maxGapMs, errors, echoes };
    },
  };
}

function sshBootId(v: VmState): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new Client();
    const timer = setTimeout(() => {
      c.end();
      reject(new Error('ssh: timeout'));
    }, 20_000);
    c.on('ready', () => {
      c.exec('cat /proc/sys/kernel/random/boot_id', (err, stream) => {
        if (err) return reject(err);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString()));
        stream.on('close', () => {
          clearTimeout(timer);
          c.end();
          resolve(out.trim());
        });
      });
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.connect({
      host: v.address,
      port: v.ports.ssh,
      username: v.ssh.user,
      privateKey: readFileSync(v.ssh.privateKeyFile),
      readyTimeout: 15_000,
      // pin the host key generated at build time
      hostVerifier: (key: Buffer) => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}` === v.ssh.hostKey,
    });
  });
}

describe('lab VM (QEMU, TCG)', () => {
  it('boots: answers ICMP, TCP echo, HTTP boot id, and SSH with the pinned host key', async () => {
    expect(vm.bootMs).toBeGreaterThan(0);
    expect(vm.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(isVmProcess(lab.state(), vm.current.pid)).toBe(true);
    const ping = await run('ping', ['-c', '3', '-i', '0.2', '-W', '2', vm.address], { allowFail: true });
    expect(ping.stdout).toMatch(/3 received/);
    const echo = echoSession(vm.address);
    await sleep(500);
    const e = echo.stop();
    expect(e.errors).toEqual([]);
    expect(e.echoes).toBeGreaterThan(3);
    expect(await fetchBootId(vm.address)).toBe(vm.bootId);
    expect(await sshBootId(vm)).toBe(vm.bootId);
    console.log(`guest boot: ${vm.bootMs} ms`);
  });

  it('the lab cable-pull cuts the guest too (every tap carries the switch cut chain)', async () => {
    const inj = cablePull.create(cablePull.schema.parse({ kind: 'cable-pull' }), context([]));
    await inj.preflight();
    const ping = streamPing(vm.address);
    await sleep(500);
    const cut = await inj.cut(1500);
    await sleep(1500);
    const restored = await inj.restore('scheduled');
    await sleep(500);
    const replies = await ping.stop();
    await inj.dispose?.();
    const gap = maxGap(replies);
    console.log(`cable-pull on the guest: injected ${(restored.t - cut.t).toFixed(1)} ms, ping gap ${gap.toFixed(1)} ms`);
    expect(gap).toBeGreaterThan(1300);
    expect(gap).toBeLessThan(2500);
  });

  it('live migration: a sub-second pause, ping silent no longer than it, the TCP session survives, same boot id, the MAC moved', async () => {
    const before = readVmState(LAB) as VmState;
    const infos: Array<Record<string, unknown>> = [];
    const ctx = context(infos);
    const inj = qemuLive.create(qemuLive.schema.parse({ kind: 'qemu-live' }), ctx);
    await inj.preflight();
    expect(await inj.heal()).toEqual([]);
    const ping = streamPing(vm.address);
    const echo = echoSession(vm.address);
    await sleep(1000);
    const cut = await inj.cut(0);
    const restored = await inj.restore('scheduled');
    await sleep(1000);
    const replies = await ping.stop();
    const session = echo.stop();
    await inj.dispose?.();
    const info = infos.find((i) => i.injector === 'qemu-live') as Record<string, unknown>;
    const gap = maxGap(replies);
    console.log(
      `live: ping gap ${gap.toFixed(1)} ms, echo gap ${session.maxGapMs} ms, STOP→RESUME ${(restored.t - cut.t).toFixed(1)} ms, QEMU downtime ${String(info.qemuDowntimeMs)} ms, total ${String(info.qemuTotalTimeMs)} ms`,
    );
    expect(replies.length).toBeGreaterThan(50);
    // QEMU chooses its pause (its downtime limit against the bandwidth it measured: 27–424 ms here, longer on
    // a loaded machine); a live migration's is sub-second, and the client's outage is that pause plus the
    // ping interval and the switch relearning the MAC, not more (their speed is the benchmark's concern)
    const pauseMs = restored.t - cut.t;
    expect(pauseMs).toBeLessThan(1000);
    expect(gap).toBeLessThan(pauseMs + 400);
    expect(session.errors).toEqual([]);
    // a guest that answers ping but not HTTP after the switch-over was seen once in ~17 full runs:
    // say what the check got, where the bridge saw the MAC, and what the guest printed
    if (info.sameBootId !== true || info.macMoved !== true) {
      const neigh = await run('ip', ['neigh', 'show', vm.address], { allowFail: true });
      console.log(
        `live: boot id ${String(info.bootIdAfter)} (${String(info.error ?? 'no error')}), MAC on ${String(info.macPort)}, source after: ${String(info.sourceStatusAfter)}, ` +
          `QEMU pids ${vmProcessPids(lab.state()).join(' ')}, neighbour: ${neigh.stdout.trim()}${consoleTail(readVmState(LAB) as VmState, 40)}`,
      );
    }
    expect(info.sameBootId).toBe(true);
    expect(info.macMoved).toBe(true);
    expect(typeof info.qemuDowntimeMs).toBe('number');
    const after = readVmState(LAB) as VmState;
    expect(after.current.generation).toBe(before.current.generation + 1);
    expect(after.current.tap).toBe(vmTap(lab.state(), after.current.generation));
    expect(isVmProcess(lab.state(), before.current.pid)).toBe(false);
    expect(vmProcessPids(lab.state())).toEqual([after.current.pid]);
  });

  it('quick migration emulating 320 MB on 1 GbE: stop→cont within 15 % of the model (5.12 s), the TCP session stalls and resumes', async () => {
    const infos: Array<Record<string, unknown>> = [];
    const ctx = context(infos);
    const config = qemuQuick.schema.parse({ kind: 'qemu-quick', emulate: { memory: '320MB', link: '1GbE' } });
    const modelMs = quickMigrationMs(320 * 1024 ** 2, { bytesPerSec: 125 * 1024 ** 2 });
    expect(modelMs).toBeCloseTo(5120, 0);
    const inj = qemuQuick.create(config, ctx);
    await inj.preflight();
    const echo = echoSession(vm.address);
    // an observer outside the injector: the guest's own ICMP replies, 10 ms apart
    const ping = streamPing(vm.address);
    await sleep(500);
    const cut = await inj.cut(0);
    const restored = await inj.restore('scheduled');
    // the echo session waits out its retransmission backoff after the resume
    await sleep(3000);
    const session = echo.stop();
    const pingGapMs = maxGap(await ping.stop());
    await inj.dispose?.();
    const measured = restored.t - cut.t;
    const info = infos.find((i) => i.injector === 'qemu-quick') as Record<string, unknown>;
    console.log(`quick: model ${modelMs} ms, stop→cont ${measured.toFixed(1)} ms, save ${JSON.stringify(info.save)}, delay ${String(info.delayMs)} ms, echo gap ${session.maxGapMs} ms`);
    expect(Math.abs(measured - modelMs) / modelMs).toBeLessThan(0.15);
    // stop→cont is the injector's own sleep; what the guest really did is the silence its ICMP replies show:
    // within 15 % of the model too (plus the 10 ms ping interval), or the emulation does not pause the guest as modelled
    console.log(`quick: ICMP gap ${pingGapMs.toFixed(1)} ms`);
    expect(Math.abs(pingGapMs - modelMs) / modelMs).toBeLessThan(0.15);
    expect(info.sameBootId).toBe(true);
    expect(info.macMoved).toBe(true);
    expect(session.errors).toEqual([]);
    expect(session.maxGapMs).toBeGreaterThan(modelMs * 0.9);
    expect(existsSync(journalPath(lab.state()))).toBe(false);
  });

  /** Starts a migration in a child "harness", kills it with SIGKILL mid-way, and checks the watchdog brought the guest back. */
  async function killMidMigration(which: 'quick' | 'live', afterCutMs: number): Promise<string> {
    const state = lab.state();
    const child = spawn(process.execPath, [...nodeArgv('../helpers/vm-migrate-child.ts', import.meta.url), LAB, which], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/^cut /m.test(out) && Date.now() < deadline && child.exitCode === null) await sleep(20);
    expect(out).toMatch(/^cut /m);
    await sleep(afterCutMs);
    expect(existsSync(journalPath(state))).toBe(true); // still mid-migration
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    // the watchdog notices within ~50 ms and resumes the guest on whichever QEMU can hold it
    const until = Date.now() + 60_000;
    while (existsSync(journalPath(state)) && Date.now() < until) await sleep(100);
    expect(existsSync(journalPath(state))).toBe(false);
    const now = readVmState(state) as VmState;
    expect(isVmProcess(state, now.current.pid)).toBe(true);
    expect(await fetchBootId(now.address, 5000)).toBe(vm.bootId);
    // the watchdog removes the journal, then exits: give it a moment
    for (let i = 0; i < 100 && vmProcessPids(state).length > 1; i++) await sleep(50);
    expect(vmProcessPids(state)).toEqual([now.current.pid]);
    const q = await connectQmp(now.current.qmpAux, 5000);
    const s = await q.execute<{ status: string }>('query-status');
    q.close();
    expect(s.status).toBe('running');
    const log = readFileSync(join(now.dir, 'watchdog.log'), 'utf8');
    return log.slice(log.lastIndexOf('died during'));
  }

  it('kill -9 of the harness mid quick migration (guest paused, save running): the detached watchdog resumes the guest', async () => {
    const log = await killMidMigration('quick', 300);
    expect(log).toMatch(/resumed the guest on the (source|destination)/);
  });

  it('kill -9 of the harness mid live migration (pre-copy): the watchdog lets QEMU finish and keeps the destination', async () => {
    const log = await killMidMigration('live', 0);
    // QEMU finishes the migration; the watchdog then finds the guest running, or (under load, in
    // the moment between the incoming state's completion and the destination's own start) the
    // destination complete but not yet started, and starts it there (a fresh-clone run saw "was inmigrate")
    expect(log).toMatch(/the guest runs on the (destination|source)|resumed the guest on the destination \(pid \d+, was \w+\)/);
  });

  it('heal() resumes a guest a dead run left paused', async () => {
    const state = lab.state();
    const now = readVmState(state) as VmState;
    const q = await connectQmp(now.current.qmpAux, 5000);
    await q.execute('stop');
    q.close();
    const inj = qemuQuick.create(qemuQuick.schema.parse({ kind: 'qemu-quick' }), context([]));
    const actions = await inj.heal();
    expect(actions.join('\n')).toMatch(/resumed the paused guest/);
    expect(await fetchBootId(now.address, 5000)).toBe(vm.bootId);
    expect(await healVm(state)).toEqual([]);
  });

  it('heal() restores the guest from the saved state when a dead run left no QEMU holding it', async () => {
    const state = lab.state();
    const now = readVmState(state) as VmState;
    // what a run killed right after the save and the source's quit leaves: a state file, no QEMU
    const file = `${now.dir}/state-${now.current.generation}.bin`;
    const q = await connectQmp(now.current.qmpAux, 5000);
    await q.execute('stop');
    await q.execute('migrate', { uri: `exec:cat > ${file}.part && mv ${file}.part ${file}` });
    expect((await pollMigration(q, { timeoutMs: 30_000 })).status).toBe('completed');
    for (let i = 0; i < 100 && !existsSync(file); i++) await sleep(20);
    await q.execute('quit').catch(() => {});
    q.close();
    for (let i = 0; i < 100 && isVmProcess(state, now.current.pid); i++) await sleep(20);
    expect(isVmProcess(state, now.current.pid)).toBe(false);
    writeJournal(state, {
      migration: 'quick',
      phase: 'saved',
      driverPid: process.pid,
      startedAtWallMs: Date.now(),
      deadlineWallMs: Date.now(),
      source: now.current,
      stateFile: file,
    });
    const actions = await healVm(state);
    expect(actions.join('\n')).toMatch(/restored the guest from/);
    const after = readVmState(state) as VmState;
    expect(after.current.generation).toBeGreaterThan(now.current.generation);
    expect(await fetchBootId(after.address, 5000)).toBe(vm.bootId);
    expect(vmProcessPids(state)).toEqual([after.current.pid]);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(journalPath(state))).toBe(false);
  });

  it('vmDown ends every QEMU process and removes the taps and the state', async () => {
    const state = lab.state();
    const pids = vmProcessPids(state);
    expect(pids.length).toBe(1);
    const removed = await vmDown(LAB);
    expect(removed.join('\n')).toMatch(/VM processes/);
    expect(vmProcessPids(state)).toEqual([]);
    for (const p of pids) expect(isVmProcess(state, p)).toBe(false);
    expect(readVmState(state)).toBeNull();
    for (const g of [0, 1]) {
      const r = await run('ip', ['netns', 'exec', state.switchNs, 'ip', 'link', 'show', vmTap(state, g)], { allowFail: true });
      expect(r.code).not.toBe(0);
    }
    expect(readLabState(LAB)).not.toBeNull();
  });

  it('a boot that does not finish in time fails with a clear error and the console tail, and leaves nothing', async () => {
    const state = lab.state();
    const t0 = Date.now();
    const err = await vmUp(state, { bootTimeoutMs: 1500 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/did not answer on .* within 1500 ms/);
    expect(err?.message).toMatch(/guest console/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(vmProcessPids(state)).toEqual([]);
    expect(readVmState(state)).toBeNull();
  });
});
