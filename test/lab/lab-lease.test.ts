/**
 * Leases keep a lab and its shared guard in place under a run:
 *  - `lab down` during a run's cut refuses (exit 2, naming the run), a second
 *    run on the same lab is refused too and leaves the first one's cut alone,
 *    and `lab down --wait` waits for the run to end;
 *  - `lab down --force` tears the lab down under the run, but the shared guard
 *    (the range's blackhole route and nft table) stays while the run lives,
 *    no packet for the lab leaves by another interface, and the run stops at
 *    its next lab health check (exit 5);
 *  - kill -9 of a run frees its lab at once; the processes it spawned held
 *    the machine-wide send lease, the lab's servers never do.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run, runIn, pidAlive } from '../../src/transport/exec.ts';
import { sleep } from '../../src/core/clock.ts';
import { labDown, labStatus, labUp, readLabState, SUPERNET_GUARD } from '../../src/lab/lab.ts';
import { SEND_LEASE, holdSendLease, releaseSendLease } from '../../src/lab/lease.ts';
import { leaseHolderPids } from '../../src/transport/lease.ts';
import type { EventOf } from '../../src/core/events.ts';
import { labName, runCli, tempDir, writeSuite, type CliResult } from '../helpers/lab.ts';
import { waitForEvent } from '../helpers/run-dir.ts';

const name = labName('tlease');
const dirs: string[] = [];
const tag = process.env.BLACKOUT_TEST_LAB_TAG ?? 'x';
const NET_TABLE = `blackout_test_${tag.replace(/[^a-z0-9]/g, '')}_${process.pid}`;

/** every run a test started: one a failed assertion left behind (stopped, or mid-cut) is ended by its PID */
const started: Array<{ pid: () => number; ended: () => boolean }> = [];

afterAll(async () => {
  // only while its CLI promise has not seen it exit: never a PID reused since
  for (const r of started) if (!r.ended() && r.pid() && pidAlive(r.pid())) process.kill(r.pid(), 'SIGKILL');
  await labDown(name, { force: true }).catch(() => {});
  await run('nft', ['delete', 'table', 'inet', NET_TABLE], { allowFail: true });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function suiteFile(suiteName: string, blackouts: string[]): string {
  const f = writeSuite({
    name: suiteName,
    target: { lab: name },
    probes: [
      // iputils ping, a child process that must inherit the send lease; the icmp probe's default sender is a thread
      { name: 'ping', kind: 'icmp', client: 'ping' },
      { name: 'sock', kind: 'icmp' },
      { name: 'echo', kind: 'tcp', interval: '100ms', reconnect: 'immediate' },
    ],
    injector: { kind: 'cable-pull' },
    blackouts,
    warmup: '1s',
    recovery: '5s',
  });
  dirs.push(join(f, '..'));
  return f;
}

function outDir(): string {
  const d = tempDir();
  dirs.push(d);
  return d;
}

function startRun(suite: string, out: string): { pid: () => number; done: Promise<CliResult & { endedAt: number }> } {
  let pid = 0;
  const done = runCli(['run', suite, '--out', out, '--no-live'], { onSpawn: (p) => (pid = p) }).then((r) => ({ ...r, endedAt: Date.now() }));
  let ended = false;
  void done.then(() => (ended = true));
  started.push({ pid: () => pid, ended: () => ended });
  return { pid: () => pid, done };
}

const isCut = (e: { type: string }): e is EventOf<'cut'> => e.type === 'cut';

async function cutElements(switchNs: string): Promise<string> {
  return (await runIn(switchNs, 'nft', ['list', 'set', 'netdev', 'bo_cut', 'cut4'], { allowFail: true })).stdout;
}

/** the child processes of `pid` (its probes' ping, …) */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * This test's own view of the leak, for this lab's subnet only (the shared guard's counter also
 * counts other labs' and other tests' packets on a shared machine): a counting chain just before the
 * guards', and a dropping one after every other chain, in case the guard is gone (the leak
 * this fixes). Returns the reader of the count: packets for the subnet headed out of any interface
 * but the lab link.
 */
async function installLeakWatch(s: { subnet: string; clientIf: string }): Promise<() => Promise<number>> {
  const match = `ip daddr ${s.subnet} oifname != { "lo", "${s.clientIf}" }`;
  await run('nft', ['delete', 'table', 'inet', NET_TABLE], { allowFail: true });
  await run('nft', ['-f', '-'], {
    input: `table inet ${NET_TABLE} {
  counter seen { }
  chain watch {
    type filter hook postrouting priority 998; policy accept;
    ${match} counter name "seen"
  }
  chain stop {
    type filter hook postrouting priority 2000; policy accept;
    ${match} drop
  }
}
`,
  });
  return async () => {
    const j = JSON.parse((await run('nft', ['-j', 'list', 'counter', 'inet', NET_TABLE, 'seen'])).stdout) as { nftables: Array<{ counter?: { packets: number } }> };
    return j.nftables.find((x) => x.counter)?.counter?.packets ?? -1;
  };
}

/** the PIDs of the lab's server processes: everything in its freezer cgroup */
function serverPids(cgroup: string): number[] {
  return readFileSync(`${cgroup}/cgroup.procs`, 'utf8').trim().split('\n').filter(Boolean).map(Number);
}

describe('a run holds its lab', () => {
  it('lab down during the cut refuses naming the run; a second run is refused and leaves the cut alone; lab down --wait waits for the run', async () => {
    const s = await labUp(name);
    const leaked = await installLeakWatch(s);
    const out = outDir();
    const r = startRun(suiteFile('lease holder', ['60s']), out);
    await waitForEvent(out, isCut, 90_000);
    expect(await cutElements(s.switchNs)).toContain(s.targetAddress);
    // the run is stopped (SIGSTOP: alive, its leases held) while the CLI calls below take their
    // seconds each on a loaded machine, so they all happen during its run whatever the load
    process.kill(r.pid(), 'SIGSTOP');

    const down = await runCli(['lab', 'down', '--name', name]);
    expect(down.code, down.stdout + down.stderr).toBe(2);
    expect(down.stderr).toMatch(new RegExp(`lab "${name}" is in use by PID ${r.pid()} \\(run of suite "lease holder", out dir ${out.replace(/[.]/g, '\\.')}, since \\d\\d:\\d\\d:\\d\\d UTC\\)`));
    expect(down.stderr).toMatch(/--force/);
    expect((await labStatus(name)).up).toBe(true);

    // a bounded wait that is too short
    const t0 = Date.now();
    const short = await runCli(['lab', 'down', '--name', name, '--wait', '1']);
    expect(pidAlive(r.pid())).toBe(true);
    expect(short.code, short.stdout + short.stderr).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(short.stderr).toMatch(/waited 1 s/);

    // a second run on the same lab: refused before its heal (which would flush the first run's cut)
    const out2 = outDir();
    const second = await runCli(['run', suiteFile('intruder', ['1s']), '--out', out2, '--no-live']);
    expect(pidAlive(r.pid())).toBe(true);
    expect(second.code, second.stdout + second.stderr).toBe(2);
    expect(second.stderr).toMatch(new RegExp(`lab "${name}" is in use by PID ${r.pid()} \\(run of suite "lease holder"`));
    expect(await cutElements(s.switchNs)).toContain(s.targetAddress);

    // a healthy lab's `lab up` is a no-op and does not need the lease
    const logs: string[] = [];
    await labUp(name, { log: (l) => logs.push(l) });
    expect(logs.join('\n')).toMatch(/already up/);

    // a long enough one: lab down goes ahead once the run has ended, not before
    const downWait = runCli(['lab', 'down', '--name', name, '--wait', '150']).then((x) => ({ ...x, endedAt: Date.now() }));
    await sleep(3000);
    process.kill(r.pid(), 'SIGCONT');
    const res = await r.done;
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const dw = await downWait;
    expect(dw.code, dw.stderr).toBe(0);
    expect(dw.endedAt).toBeGreaterThanOrEqual(res.endedAt - 100);
    expect(readLabState(name)).toBeNull();
    expect(await leaked()).toBe(0);
  }, 180_000);

  it('lab down --force under a run: the shared guard stays while the run lives, nothing leaks, the run stops at its next health check (exit 5)', async () => {
    const s = await labUp(name);
    const netCount = await installLeakWatch(s);
    const out = outDir();
    const r = startRun(suiteFile('forced', ['6s', '1s']), out);
    await waitForEvent(out, isCut, 90_000);
    // stopped (alive, its leases held, its ping child still sending) while lab down runs, whatever the load
    process.kill(r.pid(), 'SIGSTOP');

    const forced = await runCli(['lab', 'down', '--name', name, '--force']);
    expect(forced.code, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(new RegExp(`--force: lab "${name}" is in use by PID ${r.pid()}`));
    // lab down knows the run may still send: the shared guard stays, and it says who holds it
    expect(forced.stdout).toMatch(new RegExp(`the shared guard .* stays: process\\(es\\) [0-9, ]*\\b${r.pid()}\\b`));
    expect(readLabState(name)).toBeNull();
    expect((await run('nft', ['list', 'table', 'inet', SUPERNET_GUARD], { allowFail: true })).code).toBe(0);
    expect((await run('ip', ['-o', 'route', 'show', 'type', 'blackhole'])).stdout).toMatch(/blackhole 10\.213\.0\.0\/16 .*metric 4242/);

    // the run's ping keeps sending to the vanished lab for a while: nothing leaves
    await sleep(2000);
    expect(await netCount()).toBe(0);
    process.kill(r.pid(), 'SIGCONT');
    const res = await r.done;
    expect(res.code, res.stdout + res.stderr).toBe(5);
    expect(res.stderr).toMatch(new RegExp(`lab "${name}" is no longer safe to use \\(.*\\); the run stopped before trial 2, the target was restored`));
    expect(await netCount()).toBe(0);
  }, 180_000);

  it("kill -9 of a run frees the lab at once; the run's child processes held the send lease, the lab's servers never do", async () => {
    // the lab comes up while this process holds the send lease, as a test worker or a `demo` may:
    // its long-lived servers must not inherit it (else the shared guard could never be removed)
    const mine = await holdSendLease();
    let s;
    try {
      s = await labUp(name);
    } finally {
      releaseSendLease(mine);
    }
    const servers = serverPids(s.cgroup);
    expect(servers.length).toBeGreaterThanOrEqual(3);
    const holders = leaseHolderPids(SEND_LEASE);
    expect(servers.filter((p) => holders.includes(p))).toEqual([]);

    const out = outDir();
    const r = startRun(suiteFile('killed', ['20s']), out);
    await waitForEvent(out, isCut, 90_000);
    const kids = childrenOf(r.pid());
    try {
      // the run and its ping hold the send lease (the ping inherited it)
      const h = leaseHolderPids(SEND_LEASE);
      expect(h).toContain(r.pid());
      expect(kids.filter((k) => h.includes(k)).length).toBeGreaterThanOrEqual(1);
      expect(servers.filter((p) => h.includes(p))).toEqual([]);

      process.kill(r.pid(), 'SIGKILL');
      await r.done;
      // its lab lease died with it: lab down goes ahead at once, no --force
      const down = await runCli(['lab', 'down', '--name', name]);
      expect(down.code, down.stdout + down.stderr).toBe(0);
      expect(readLabState(name)).toBeNull();
    } finally {
      for (const k of kids) if (pidAlive(k)) process.kill(k, 'SIGKILL');
    }
  }, 180_000);
});
