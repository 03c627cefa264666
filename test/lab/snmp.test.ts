/**
 * snmp-switch-port against a real Debian snmpd that owns the lab switch's
 * ports: v3 authPriv through `blackout run` (ping and TCP see the port go
 * down and up), v2c with the watchdog restoring a port nobody restored.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runIn } from '../../src/transport/exec.ts';
import { guardLeakCount } from '../../src/lab/lab.ts';
import { makeInjector } from '../helpers/injector.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { startSwitchSnmpd, type SwitchSnmpd } from '../helpers/switch-snmpd.ts';

const lab = useLab(labName('asnmp'));
let agent: SwitchSnmpd;
let leak0 = 0;
beforeAll(async () => {
  leak0 = await guardLeakCount(lab.state());
  agent = await startSwitchSnmpd(lab.state());
  process.env.A_SNMP_COMMUNITY = agent.community;
  process.env.A_SNMP_AUTH = agent.v3.authKey;
  process.env.A_SNMP_PRIV = agent.v3.privKey;
});
afterAll(async () => {
  await agent?.stop();
});
const portState = async () => (await runIn(lab.state().switchNs, 'ip', ['-o', 'link', 'show', lab.state().targetPort])).stdout;
const pingOnce = async (addr: string) => (await run('ping', ['-c', '1', '-W', '1', addr], { allowFail: true })).code === 0;

describe('snmp-switch-port against snmpd', () => {
  it('v3 authPriv by ifName through blackout run: the port goes down and up', async () => {
    const s = lab.state();
    const out = tempDir();
    const suite = writeSuite({
      name: 'snmp port',
      target: { lab: labName('asnmp') },
      probes: [
        { name: 'ping', kind: 'icmp', interval: '10ms' },
        { name: 'echo', kind: 'tcp', interval: '100ms' },
      ],
      injector: {
        kind: 'snmp-switch-port',
        host: agent.address,
        version: '3',
        v3: { user: agent.v3.user, level: 'authPriv', authProtocol: 'sha', authKey: { env: 'A_SNMP_AUTH' }, privProtocol: 'aes', privKey: { env: 'A_SNMP_PRIV' } },
        ifName: s.targetPort,
      },
      blackouts: ['2s'],
      warmup: '1s',
      recovery: '15s',
    });
    const r = await runCli(['run', suite, '--out', out, '--no-live'], { timeoutMs: 90_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      trials: Array<{ injected: { durationMs: number }; probes: Record<string, { outcome: string; observedOutageMs: number }> }>;
    };
    const t = summary.trials[0]!;
    expect(t.injected.durationMs).toBeGreaterThan(1850);
    expect(t.injected.durationMs).toBeLessThan(2300);
    // a link down, not an nft drop: the outage ping sees starts at the SET and ends when the link is back up
    expect(t.probes.ping!.observedOutageMs).toBeGreaterThan(1900);
    expect(t.probes.ping!.observedOutageMs).toBeLessThan(t.injected.durationMs + 1500);
    const events = readFileSync(join(out, 'events.jsonl'), 'utf8');
    expect(events).not.toContain(agent.v3.authKey);
    expect(events).not.toContain(agent.v3.privKey);
    expect(events).toMatch(/"ifOperStatusAfter":\d/);
    expect(await portState()).toContain('state UP');
    expect(await guardLeakCount(s)).toBe(leak0);
  });

  it('v2c by ifIndex: nobody restores (harness gone), the detached watchdog sets the port up', async () => {
    const s = lab.state();
    const idx = Number((await runIn(s.switchNs, 'cat', [`/sys/class/net/${s.targetPort}/ifindex`])).stdout.trim());
    const { injector, clock } = makeInjector(
      { kind: 'snmp-switch-port', host: agent.address, version: '2c', community: { env: 'A_SNMP_COMMUNITY' }, ifIndex: idx, grace: '1s' },
      { target: { name: 'lab asnmp', address: s.targetAddress, services: {} } },
    );
    await injector.preflight();
    const cut = await injector.cut(1000);
    expect(await portState()).toMatch(/state DOWN/);
    expect(await pingOnce(s.targetAddress)).toBe(false);
    while (clock.now() < cut.deadline + 1500 && !(await portState()).includes('state UP')) await new Promise((r) => setTimeout(r, 100));
    expect(await portState()).toContain('state UP');
    expect(clock.now()).toBeLessThan(cut.deadline + 1500);
    expect(await pingOnce(s.targetAddress)).toBe(true);
    // a wrong community is refused readably, without printing it
    process.env.A_SNMP_BAD = 'not-the-community';
    const bad = makeInjector({ kind: 'snmp-switch-port', host: agent.address, version: '2c', community: { env: 'A_SNMP_BAD' }, ifIndex: idx, timeout: '500ms', retries: 0 }).injector;
    const e = await bad.preflight().catch((x: Error) => x);
    expect((e as Error).message).toMatch(/snmp v2c .*community <secret from env A_SNMP_BAD>: .*(timed out|Timeout)/i);
    expect((e as Error).message).not.toContain('not-the-community');
  });
});
