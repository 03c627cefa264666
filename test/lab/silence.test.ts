/**
 * The lab's cable pull is silence, not an error: proven against the real
 * kernel, for sockets, iputils ping and the icmp probe's own sender (which
 * does report a neighbour that never answers ARP as unreachable). And the
 * guard keeps lab traffic on the machine through every kind of cut (its
 * counter stays 0), while a positive control shows it does count.
 */
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createClock, sleep } from '../../src/core/clock.ts';
import { guardLeakCount, supernetLeakCount } from '../../src/lab/lab.ts';
import { run } from '../../src/transport/exec.ts';
import { resolveTarget } from '../../src/run/resolve-target.ts';
import { injectors } from '../../src/injectors/index.ts';
import { LabCut } from '../../src/injectors/shared/lab-cut.ts';
import { useLab, labName } from '../helpers/lab.ts';
import { watchPinger } from '../helpers/pinger.ts';

const lab = useLab(labName('tsilence'));

function openSocket(host: string, port: number): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ host, port }, () => res(s));
    s.once('error', rej);
  });
}

describe('cable-pull is silent packet loss', () => {
  it('an established TCP socket sees no RST and no error, a new connect() hangs, ping prints no "unreachable"', async () => {
    const s = lab.state();
    const sock = await openSocket(s.targetAddress, 7);
    const seen: string[] = [];
    sock.on('error', (e) => seen.push(`error ${e.message}`));
    sock.on('close', () => seen.push('close'));
    let echoed = '';
    sock.on('data', (d) => (echoed += d.toString()));

    const cut = new LabCut(s, createClock(), s.targetAddress, false);
    await cut.cut(4000);
    try {
      sock.write('during the cut\n');
      // a new connection: no ECONNREFUSED / EHOSTUNREACH, just a pending SYN
      const fresh = connect({ host: s.targetAddress, port: 7 });
      const freshEvents: string[] = [];
      fresh.on('connect', () => freshEvents.push('connect'));
      fresh.on('error', (e) => freshEvents.push(`error ${(e as NodeJS.ErrnoException).code}`));
      const ping = spawnSync('ping', ['-n', '-c', '4', '-i', '0.25', '-W', '1', s.targetAddress], { encoding: 'utf8' });
      await sleep(500);
      expect(freshEvents).toEqual([]);
      expect(fresh.connecting).toBe(true);
      fresh.destroy();
      expect(ping.stdout).not.toMatch(/unreachable/i);
      expect(ping.stdout).toMatch(/4 packets transmitted, 0 received/);
      expect(ping.status).toBe(1); // no reply, but no error either (an error would be status 2)
      expect(seen).toEqual([]);
      expect(echoed).toBe('');
    } finally {
      await cut.restore();
    }
    // the same session resumes by itself: TCP retransmits the line once the cable is back
    for (let i = 0; i < 60 && !echoed.includes('during the cut'); i++) await sleep(100);
    expect(echoed).toBe('during the cut\n');
    expect(seen).toEqual([]);
    sock.destroy();
  });

  it('the icmp socket sender sees the pull as silence, and a neighbour that never answers ARP as unreachable', async () => {
    const s = lab.state();
    const clock = createClock();
    const cut = new LabCut(s, clock, s.targetAddress, false);
    const window = { from: 0, to: 0 };
    const pulled = await watchPinger(
      s.targetAddress,
      async () => {
        await sleep(300);
        window.from = (await cut.cut(4000)).t;
        await sleep(1500);
        window.to = (await cut.restore()).before;
        await sleep(300);
      },
      clock,
    );
    expect(pulled.errors).toEqual([]);
    // requests kept going out through the silence, and replies came back after it
    const answeredDuring = pulled.replies.filter((r) => r.sentAt > window.from && r.sentAt < window.to);
    expect(answeredDuring).toEqual([]);
    const before = pulled.replies.filter((r) => r.sentAt < window.from).at(-1)!;
    const after = pulled.replies.find((r) => r.sentAt > window.to)!;
    expect(after).toBeDefined();
    expect(after.seq - before.seq).toBeGreaterThan((window.to - window.from) / 2);
    // nobody at .250 of the lab's subnet: after ARP's three tries the host reports it unreachable
    const nobody = s.targetAddress.replace(/\.\d+$/, '.250');
    const gone = await watchPinger(nobody, () => sleep(4500));
    expect(gone.replies).toEqual([]);
    expect(gone.errors.join('\n')).toMatch(/^From [\d.]+: host unreachable \(icmp_seq=\d+\)$/m);
  });
});

describe('the leak guard', () => {
  it('stays at 0 through every injector while clients keep talking', async () => {
    const s = lab.state();
    const clock = createClock();
    const target = await resolveTarget({ lab: s.name, vm: false });
    const before = await guardLeakCount(s);
    const superBefore = await supernetLeakCount();
    for (const def of injectors.filter((d) => ['cable-pull', 'quick-migration', 'live-migration'].includes(d.kind))) {
      for (const arp of [false, true]) {
        const inj = def.create(def.schema.parse({ kind: def.kind, arp }), { target, clock, runDir: '/tmp', log: () => {}, info: () => {} });
        await inj.preflight();
        const pinger = run('ping', ['-n', '-c', '15', '-i', '0.05', '-W', '1', s.targetAddress], { allowFail: true });
        const sock = await openSocket(s.targetAddress, 7);
        sock.on('error', () => {});
        await inj.cut(600);
        sock.write('x\n');
        connect({ host: s.targetAddress, port: 22 })
          .on('error', () => {})
          .setTimeout(300, function (this: Socket) {
            this.destroy();
          });
        await sleep(600);
        await inj.restore('scheduled');
        await pinger;
        sock.destroy();
      }
    }
    expect(await guardLeakCount(s)).toBe(before);
    expect(before).toBe(0);
    expect(await supernetLeakCount()).toBe(superBefore);
  });

  it('counts and drops a lab packet forced out of another interface (positive control, stays on the machine)', async () => {
    const s = lab.state();
    // a host-only veth pair: even without the guard, a packet sent here never leaves the machine
    const a = `bogc${s.index}a`;
    const b = `bogc${s.index}b`;
    await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    try {
      await run('ip', ['link', 'set', a, 'up']);
      await run('ip', ['link', 'set', b, 'up']);
      const before = await guardLeakCount(s);
      await run('ping', ['-n', '-c', '1', '-W', '1', '-I', a, s.targetAddress], { allowFail: true });
      expect(await guardLeakCount(s)).toBeGreaterThan(before);
      // reset the counter so the other checks read 0 again
      await run('nft', ['reset', 'counter', 'inet', s.guardTable, 'leak']);
    } finally {
      await run('ip', ['link', 'del', a], { allowFail: true });
    }
  });

  it("the shared /16 guard stops lab traffic on any non-lab interface even with the lab's own guard gone", async () => {
    const s = lab.state();
    // host-only veth again, named outside the lab's "bo*" pattern
    const a = `xgc${s.index}a`;
    const b = `xgc${s.index}b`;
    await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    try {
      await run('ip', ['link', 'set', a, 'up']);
      await run('ip', ['link', 'set', b, 'up']);
      const before = await supernetLeakCount();
      // an address of the range outside every lab's /24 (index 251 is never given out): no lab's own guard covers it
      await run('ping', ['-n', '-c', '1', '-W', '1', '-I', a, '10.213.251.9'], { allowFail: true });
      expect(await supernetLeakCount()).toBeGreaterThan(before);
      await run('nft', ['reset', 'counter', 'inet', 'blackout_guard', 'leak']);
      // and the blackhole for the whole range is there behind every lab's own route
      expect((await run('ip', ['route', 'show', 'table', 'main'])).stdout).toMatch(/blackhole 10\.213\.0\.0\/16 metric 4242/);
    } finally {
      await run('ip', ['link', 'del', a], { allowFail: true });
    }
  });
});
