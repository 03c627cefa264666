/**
 * Quick migration on cgroup v2 (`cgroup.freeze`) as well as v1: the detection
 * picks the right freezer from the mount table, and a lab made with
 * BLACKOUT_CGROUP=v2 on this machine (which has a v1 freezer hierarchy and a
 * cgroup2 hierarchy beside it) freezes its real servers through cgroup.freeze:
 * the freeze is confirmed by the kernel (cgroup.events), the watchdog thaws by
 * itself, a quick-migration trial runs through it, and `lab down` removes the
 * v2 cgroup.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chooseFreezer, detectFreezer, parseMounts } from '../../src/lab/cgroup.ts';
import { labDown } from '../../src/lab/lab.ts';
import { sleep } from '../../src/core/clock.ts';
import { Freezer } from '../../src/injectors/shared/freezer.ts';
import { labName, useLab } from '../helpers/lab.ts';
import { runLabSuite } from '../helpers/probes.ts';
import { readSummary, waitForEvent } from '../helpers/run-dir.ts';
import { useOwnTmp } from '../helpers/tmp.ts';

const HYBRID = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
`;
// a stock Debian 12 / Ubuntu host: cgroup2 only
const PURE_V2 = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
`;
const V1_ONLY = `cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
`;

describe('freezer detection', () => {
  it('picks v1 where a v1 freezer is mounted, v2 otherwise, and honours BLACKOUT_CGROUP', () => {
    expect(chooseFreezer(HYBRID)).toEqual({ version: 1, mount: '/sys/fs/cgroup/freezer', root: '/sys/fs/cgroup/freezer/blackout' });
    expect(chooseFreezer(PURE_V2)).toEqual({ version: 2, mount: '/sys/fs/cgroup', root: '/sys/fs/cgroup/blackout' });
    expect(chooseFreezer(HYBRID, 'v2')).toEqual({ version: 2, mount: '/sys/fs/cgroup/unified', root: '/sys/fs/cgroup/unified/blackout' });
    expect(chooseFreezer(V1_ONLY)).toMatchObject({ version: 1 });
    expect(() => chooseFreezer(PURE_V2, 'v1')).toThrow(/no cgroup v1 hierarchy with the freezer controller/);
    expect(() => chooseFreezer(V1_ONLY, 'v2')).toThrow(/no cgroup2 hierarchy is mounted/);
    expect(() => chooseFreezer('', undefined)).toThrow(/no cgroup freezer/);
    expect(() => chooseFreezer(HYBRID, 'v3')).toThrow(/BLACKOUT_CGROUP=v3: expected v1 or v2/);
    expect(parseMounts('none /run/a\\040b cgroup2 rw 0 0')[0]!.target).toBe('/run/a b');
  });

  it('on this machine: the real mount table decides', () => {
    const mounts = parseMounts(readFileSync('/proc/self/mounts', 'utf8'));
    const hasV1Freezer = mounts.some((m) => m.fstype === 'cgroup' && m.options.includes('freezer'));
    const saved = process.env.BLACKOUT_CGROUP;
    delete process.env.BLACKOUT_CGROUP;
    try {
      expect(detectFreezer().version).toBe(hasV1Freezer ? 1 : 2);
    } finally {
      if (saved !== undefined) process.env.BLACKOUT_CGROUP = saved;
    }
  });
});

const v2 = (() => {
  try {
    return chooseFreezer(readFileSync('/proc/self/mounts', 'utf8'), 'v2');
  } catch {
    return null;
  }
})();

// the lab below is made in cgroup v2 (the CLI children inherit the choice, though the freezer
// itself reads the version from the lab's cgroup)
process.env.BLACKOUT_CGROUP = 'v2';
useOwnTmp('blackout-freezer-v2-test-');
const LAB = labName('pfrzv2');
const lab = v2 ? useLab(LAB) : null;

describe.skipIf(!v2)('quick migration through cgroup v2', () => {
  it('the lab is made in cgroup v2 and its servers are in it', () => {
    const s = lab!.state();
    expect(s.cgroup).toBe(`${v2!.root}/${s.name}`);
    expect(existsSync(`${s.cgroup}/cgroup.freeze`)).toBe(true);
    const pids = readFileSync(`${s.cgroup}/cgroup.procs`, 'utf8').trim().split('\n').map(Number);
    expect(pids.length).toBeGreaterThan(5);
    // each server's v2 membership, as the kernel reports it for the process
    const rel = s.cgroup.slice(v2!.mount.length);
    for (const pid of pids.slice(0, 5)) expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(`0::${rel}\n`);
  });

  it('freezes (confirmed by cgroup.events), and the watchdog thaws by itself', async () => {
    const f = new Freezer(lab!.state());
    expect(f.version).toBe(2);
    expect(f.state()).toBe('THAWED');
    f.armWatchdog(800);
    await f.freeze();
    expect(f.state()).toBe('FROZEN');
    expect(readFileSync(`${lab!.state().cgroup}/cgroup.events`, 'utf8')).toMatch(/^frozen 1$/m);
    // a frozen server takes no part: its process state stays put while frozen (no CPU time moves)
    const pid = Number(readFileSync(`${lab!.state().cgroup}/cgroup.procs`, 'utf8').split('\n')[0]);
    const ticks = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).join(' ');
    const before = ticks();
    await sleep(300);
    expect(ticks()).toBe(before);
    for (let i = 0; i < 60 && f.state() !== 'THAWED'; i++) await sleep(50);
    expect(f.state()).toBe('THAWED');
    f.disarmWatchdog();
  });

  it('a quick-migration trial freezes the target through cgroup.freeze; sessions stall and resume', async () => {
    let frozenSeen = '';
    const r = await runLabSuite(
      LAB,
      {
        name: 'quick migration v2',
        probes: [
          { name: 'echo', kind: 'tcp', interval: '100ms' },
          { name: 'redis', kind: 'tcp', mode: 'exchange', port: 6379, send: 'PING\r\n', expect: '^\\+PONG' },
        ],
        injector: { kind: 'quick-migration' },
        blackouts: ['2s'],
        warmup: '1s',
        recovery: '8s',
      },
      {
        during: async (out) => {
          await waitForEvent(out, (e) => e.type === 'cut');
          await sleep(500);
          frozenSeen = readFileSync(`${lab!.state().cgroup}/cgroup.events`, 'utf8');
        },
      },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(frozenSeen).toMatch(/^frozen 1$/m);
    const cut = r.events.find((e) => e.type === 'cut');
    expect(cut && 'detail' in cut && (cut.detail as { freezeTookMs?: number }).freezeTookMs).toBeLessThan(1000);
    const t = readSummary(r.out).trials[0]!;
    expect(t.probes.echo!.outcome).toBe('stalled');
    expect(t.probes.redis!.outcome).toBe('stalled');
    expect(readFileSync(`${lab!.state().cgroup}/cgroup.events`, 'utf8')).toMatch(/^frozen 0$/m);
  });

  it('lab down removes the v2 cgroup', async () => {
    const cg = lab!.state().cgroup;
    await labDown(LAB);
    expect(existsSync(cg)).toBe(false);
  });
});
