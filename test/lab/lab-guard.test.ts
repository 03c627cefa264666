/**
 * The lab's safety net, each part on its own, without touching the host's
 * network: the shared guard's rules run in a namespace of the test's own
 * (host-only veth pairs, created and deleted here), the range check reads
 * such a namespace, and the index lock is tried at a lock path of the test's
 * own (the machine's real `lab up`s are not held up).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runIn } from '../../src/transport/exec.ts';
import { supernetGuardRuleset } from '../../src/lab/lab.ts';
import { rangeConflicts } from '../../src/lab/range.ts';
import { nodeArgv } from '../../src/core/runtime.ts';
import { ROOT, runCli, tempDir, writeSuite } from '../helpers/lab.ts';

const tag = process.env.BLACKOUT_TEST_LAB_TAG ?? 'x';
// not "bo-…": a namespace of that prefix would count as a lab's for the shared guard's removal
const NS = `btguard-${tag}-${process.pid}`;
const dirs: string[] = [];

async function nsCounter(): Promise<number> {
  const r = await runIn(NS, 'nft', ['-j', 'list', 'counter', 'inet', 'blackout_guard', 'leak']);
  const json = JSON.parse(r.stdout) as { nftables: Array<{ counter?: { packets: number } }> };
  return json.nftables.find((x) => x.counter)?.counter?.packets ?? -1;
}

/** one ICMP echo from inside the test namespace; nothing leaves it (every route there is a veth whose peer is in it too) */
async function pingOnce(address: string): Promise<void> {
  await runIn(NS, 'ping', ['-n', '-c', '1', '-W', '1', address], { allowFail: true });
}

describe('the shared guard matches the exact lab links, at postrouting', () => {
  beforeAll(async () => {
    await run('ip', ['netns', 'add', NS]);
    const ip = (...a: string[]) => run('ip', ['-n', NS, ...a]);
    await ip('link', 'set', 'lo', 'up');
    // a lab link, a host bond and a name that merely starts like a lab link: veth pairs inside the namespace
    for (const [dev, net] of [
      ['bo7c', '10.213.79'],
      ['bond0', '10.213.77'],
      ['bo-x', '10.213.78'],
    ] as const) {
      await ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev.replace('-', '')}p`);
      await ip('link', 'set', dev, 'up');
      await ip('link', 'set', `${dev.replace('-', '')}p`, 'up');
      await ip('addr', 'add', `${net}.1/24`, 'dev', dev);
    }
    await runIn(NS, 'nft', ['-f', '-'], { input: supernetGuardRuleset(['bo7c']) });
  });
  afterAll(async () => {
    await run('ip', ['netns', 'del', NS], { allowFail: true });
  });

  it('drops and counts lab-range packets leaving by bond0 or bo-x; lets the listed lab link pass', async () => {
    const c0 = await nsCounter();
    await pingOnce('10.213.77.9'); // by bond0
    const c1 = await nsCounter();
    expect(c1).toBe(c0 + 1);
    await pingOnce('10.213.78.9'); // by bo-x
    const c2 = await nsCounter();
    expect(c2).toBe(c1 + 1);
    // positive control: the exempted lab link carries lab traffic (no reply, but not dropped by the guard)
    await pingOnce('10.213.79.9');
    expect(await nsCounter()).toBe(c2);
  });

  it('a reroute after the output hook (a mark and a policy route to bond0) is still caught', async () => {
    // the packet is first routed by the lab link; a route-type output chain marks it and the kernel
    // routes it again, by the mark, out of bond0: a guard on the output hook saw the lab link only
    await run('ip', ['-n', NS, 'route', 'add', '10.213.79.0/24', 'dev', 'bond0', 'table', '100']);
    await run('ip', ['-n', NS, 'rule', 'add', 'fwmark', '0x42', 'table', '100']);
    await runIn(NS, 'nft', ['-f', '-'], {
      input: 'table ip reroute {\n  chain out {\n    type route hook output priority mangle; policy accept;\n    ip daddr 10.213.79.9 meta mark set 0x42\n  }\n}\n',
    });
    const c0 = await nsCounter();
    await pingOnce('10.213.79.9');
    expect(await nsCounter()).toBe(c0 + 1);
    // and the lab link's other addresses still pass
    await pingOnce('10.213.79.10');
    expect(await nsCounter()).toBe(c0 + 1);
  });
});

describe('the lab range must be free', () => {
  const ns = `btrange-${tag}-${process.pid}`;
  afterAll(async () => {
    await run('ip', ['netns', 'del', ns], { allowFail: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("names a foreign address, route or wider network in the range; the lab's own links are not conflicts", async () => {
    await run('ip', ['netns', 'add', ns]);
    const ip = (...a: string[]) => run('ip', ['-n', ns, ...a]);
    expect(await rangeConflicts('10.213.0.0/16', [], ns)).toEqual([]);
    // a lab-like link with its own /24 and the lab's blackholes: ours
    // (veth pairs inside the namespace: this kernel has no dummy links)
    await ip('link', 'add', 'bo5c', 'type', 'veth', 'peer', 'name', 'bo5cp');
    await ip('link', 'set', 'bo5c', 'up');
    await ip('addr', 'add', '10.213.5.1/24', 'dev', 'bo5c');
    await ip('route', 'add', 'blackhole', '10.213.0.0/16', 'metric', '4242');
    await ip('route', 'add', 'blackhole', '10.213.5.0/24', 'metric', '4242');
    expect(await rangeConflicts('10.213.0.0/16', [], ns)).toEqual([]);
    // a real network in the range
    await ip('link', 'add', 'corp0', 'type', 'veth', 'peer', 'name', 'corp0p');
    await ip('link', 'set', 'corp0', 'up');
    await ip('addr', 'add', '10.213.9.4/24', 'dev', 'corp0');
    const c1 = await rangeConflicts('10.213.0.0/16', [], ns);
    expect(c1).toContain('address 10.213.9.4/24 on corp0');
    expect(c1.some((c) => c.startsWith('route 10.213.9.0/24') && c.includes('dev corp0'))).toBe(true);
    // a wider route (a VPN's 10/8) that may reach real hosts in the range
    await ip('addr', 'del', '10.213.9.4/24', 'dev', 'corp0');
    await ip('route', 'add', '10.0.0.0/8', 'dev', 'corp0');
    const c2 = await rangeConflicts('10.213.0.0/16', [], ns);
    expect(c2).toHaveLength(1);
    expect(c2[0]).toMatch(/^route 10\.0\.0\.0\/8 dev corp0 .*wider network/);
    // a link named like a lab's but carrying another lab's subnet is not ours either
    await ip('route', 'del', '10.0.0.0/8', 'dev', 'corp0');
    await ip('addr', 'add', '10.213.6.1/24', 'dev', 'bo5c');
    expect(await rangeConflicts('10.213.0.0/16', [], ns)).toContain('address 10.213.6.1/24 on bo5c');
  });

  it('a real target inside the lab range (and in no lab that is up) is refused (exit 2), nothing injected', async () => {
    // no lab takes an index above 250
    for (const host of ['10.213.253.2', '10.213.254.7']) {
      const suite = writeSuite({
        name: 'in range',
        target: { host, echo: { port: 7 } },
        probes: [{ name: 'echo', kind: 'tcp' }],
        injector: { kind: 'command', cut: ['true'], restore: ['true'] },
        blackouts: ['1s'],
      });
      const out = tempDir();
      dirs.push(join(suite, '..'), out);
      const r = await runCli(['run', suite, '--out', out, '--no-live']);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`target host "${host.replace(/\./g, '\\.')}" is inside the lab range 10\\.213\\.0\\.0/16`));
    }
  });
});

describe('the lab index lock is an flock: never broken by age, released by its holder dying', () => {
  let dir = '';
  let lock = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'blackout-alloc-'));
    lock = join(dir, 'alloc.lock');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function holder(holdMs: number) {
    const child = spawn(process.execPath, [...nodeArgv('../helpers/alloc-lock-child.ts', import.meta.url), lock, String(holdMs)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: Array<{ ev: string; t: number }> = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(JSON.parse(l));
      for (const w of waiters.splice(0)) w();
    });
    const next = (ev: string) =>
      new Promise<number>((res, rej) => {
        const check = () => {
          const hit = lines.find((l) => l.ev === ev);
          if (hit) return res(hit.t);
          waiters.push(check);
        };
        child.once('exit', () => setTimeout(() => rej(new Error(`holder exited before "${ev}"`)), 100));
        check();
      });
    const exited = new Promise<void>((res) => child.once('exit', () => res()));
    return { child, next, exited };
  }

  it('a second taker waits for a holder that is slow for longer than 30 s (the old lock broke it at 30 s)', async () => {
    const a = holder(35_000);
    await a.next('in');
    const b = holder(0);
    const bIn = await b.next('in');
    const aOut = await a.next('out');
    expect(bIn).toBeGreaterThanOrEqual(aOut);
    await Promise.all([a.exited, b.exited]);
  }, 90_000);

  it('kill -9 of the holder frees it at once', async () => {
    const a = holder(600_000);
    await a.next('in');
    const b = holder(0);
    await new Promise((r) => setTimeout(r, 500));
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    const bIn = await b.next('in');
    expect(bIn - killedAt).toBeLessThan(3000);
    await b.exited;
  }, 60_000);
});
