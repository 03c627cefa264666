/**
 * A hypervisor's live migration gets the live-migration verdict, whatever the
 * adapter's kind or mode is called: each adapter declares what its modes are
 * (`migration`), run-start records it, and summary.json, the HTML and the
 * Markdown read it. Each run here is a real CLI run: a ping probe on
 * 127.0.0.1 and the adapter talking to the recording SSH server, which
 * answers the preflight and completes the migration command.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSsh, type FakeSsh } from '../helpers/fake-ssh.ts';
import { runCli, writeSuite } from '../helpers/lab.ts';
import { eventsSoFar } from '../helpers/run-dir.ts';

let fake: FakeSsh;
let tmp: string;
beforeAll(async () => {
  fake = await startFakeSsh({ user: 'ops' });
  tmp = mkdtempSync(join(tmpdir(), 'blackout-livetest-'));
  fake.rules.push(
    // a detached watchdog reports its PID (timed modes); its script also names the VM state commands, so it goes first
    { match: 'nohup', stdout: 'pid:777\n' },
    { match: ').State', stdout: 'Running\r\n' },
    { match: 'vm.info', stdout: '  Power state:  poweredOn\n' },
    { match: 'qm status', stdout: 'status: running\n' },
    { match: 'domstate', stdout: 'running\n' },
  );
});
afterAll(async () => {
  await fake.close();
  rmSync(tmp, { recursive: true, force: true });
});
// other test files also run against 127.0.0.1: one run per target holds, so each run waits its turn (--wait)
const ssh = () => ({ host: fake.host, port: fake.port, user: fake.user, privateKeyFile: fake.privateKeyFile, hostKey: fake.hostKey });

const LIVE_MODES: Array<[string, Record<string, unknown>, RegExp]> = [
  ['Hyper-V live migration', { kind: 'hyperv', vm: 'app01', mode: 'live-migration', node: 'HV02' }, /Move-ClusterVirtualMachineRole|Move-VM/],
  ['libvirt migrate-live', { kind: 'libvirt', uri: 'qemu:///system', domain: 'app01', mode: 'migrate-live', destination: 'qemu+ssh://kvm02.example.internal/system' }, /migrate --live/],
  [
    'vSphere vMotion',
    { kind: 'vsphere', url: 'https://vc.example.internal/sdk', username: 'ops@vsphere.local', password: { env: 'A_LIVE_VS_PW' }, vm: 'app01', mode: 'vmotion', host: 'esx02' },
    /vm\.migrate/,
  ],
  ['Proxmox migrate --online', { kind: 'proxmox', vmid: 101, mode: 'migrate', target: 'pve02' }, /qm migrate 101 pve02 --online/],
];

describe('a hypervisor live migration is judged as a live migration', () => {
  it.each(LIVE_MODES)('%s', async (label, injector, migrateCommand) => {
    process.env.A_LIVE_VS_PW = 'vs-secret';
    fake.recorded.length = 0;
    const out = join(tmp, label.replace(/\W+/g, '-'));
    const suite = writeSuite({
      name: label,
      target: { host: '127.0.0.1' },
      probes: [{ name: 'ping', kind: 'icmp', interval: '20ms' }],
      injector: { ...injector, ssh: ssh() },
      warmup: '300ms',
      recovery: '1s',
    });
    const r = await runCli(['run', suite, '--out', out, '--no-live', '--wait', '300'], { env: { A_LIVE_VS_PW: 'vs-secret' }, timeoutMs: 90_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    // the migration really ran, through the adapter's own command
    expect(fake.commands().some((c) => migrateCommand.test(c))).toBe(true);
    const start = eventsSoFar(out).find((e) => e.type === 'run-start');
    expect(start?.type === 'run-start' && start.injector.migration).toBe('live');
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { injector: { migration: string }; verdict: { headline: string; live: string } };
    expect(summary.verdict.headline).toMatch(/^Live migration \(measured: 1 live migration\(s\)/);
    expect(summary.injector.migration).toBe('live');
    expect(summary.verdict.live).toMatch(/^Live migration \(measured/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/<p class="headline">Live migration \(measured/);
    expect(html).toMatch(/<p class="live na" id="live-verdict">Quick migration is not judged by this run/);
    const md = readFileSync(join(out, 'summary.md'), 'utf8');
    expect(md).toMatch(/\*\*Live migration \(measured/);
  });

  it('the same adapter in a pause mode is not a live migration', async () => {
    fake.recorded.length = 0;
    const out = join(tmp, 'libvirt-suspend');
    const suite = writeSuite({
      name: 'libvirt suspend',
      target: { host: '127.0.0.1' },
      probes: [{ name: 'ping', kind: 'icmp', interval: '20ms' }],
      injector: { kind: 'libvirt', ssh: ssh(), uri: 'qemu:///system', domain: 'app01', mode: 'suspend' },
      blackouts: ['300ms'],
      warmup: '300ms',
      recovery: '1s',
    });
    const r = await runCli(['run', suite, '--out', out, '--no-live', '--wait', '300'], { timeoutMs: 90_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { verdict: { headline: string } };
    expect(summary.verdict.headline).not.toMatch(/^Live migration/);
  });
});
