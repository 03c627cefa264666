/**
 * The adapters that cannot run here (Hyper-V, vSphere, Proxmox, libvirt's live
 * migration), over a real SSH connection to the recording server: exact
 * commands and their order, quoting, secrets on stdin, restore after a failed
 * cut, restore retries and timeouts, migration timeouts with abort — plus the
 * `--dry-run` transcript through the real CLI.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSsh, type FakeSsh } from '../helpers/fake-ssh.ts';
import { makeInjector } from '../helpers/injector.ts';
import { runCli, writeSuite } from '../helpers/lab.ts';

let fake: FakeSsh;
beforeAll(async () => {
  fake = await startFakeSsh({ user: 'ops' });
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.recorded.length = 0;
  fake.rules.length = 0;
});
const ssh = () => ({ host: fake.host, port: fake.port, user: fake.user, privateKeyFile: fake.privateKeyFile, hostKey: fake.hostKey });
const body = (ps: string) => /try \{\n([\s\S]*)\n\} catch/.exec(ps)?.[1] ?? ps;

describe('hyperv over SSH (PowerShell)', () => {
  it('save: preflight, heal, watchdog task, Save-VM, Start-VM, unregister — quoted as literals', async () => {
    fake.rules.push({ match: ').State', stdout: 'Running\r\n' });
    const { injector } = makeInjector({ kind: 'hyperv', ssh: ssh(), vm: "app'01 $(evil)", mode: 'save' });
    await injector.preflight();
    await injector.heal();
    const cut = await injector.cut(1000);
    expect(cut.deadline - cut.before).toBeGreaterThanOrEqual(60_500); // 1 s + the task scheduler's 60 s grace
    expect(cut.detail!.watchdogRearmedAfterCut).toBe(true);
    await injector.restore('scheduled');
    await injector.dispose?.();
    const cmds = fake.recorded.map((r) => r.powershell);
    expect(cmds.every((c) => c !== null)).toBe(true); // every call went as -EncodedCommand
    const bodies = cmds.map((c) => body(c!));
    // exactly one VM by that name, or the preflight refuses
    expect(bodies[0]).toBe(
      `$v = @(Get-VM -Name 'app''01 $(evil)' | Where-Object { $_.Name -eq 'app''01 $(evil)' })\nif ($v.Count -ne 1) { throw ('expected exactly one VM named ' + 'app''01 $(evil)' + ', found ' + $v.Count) }\n($v[0]).State`,
    );
    expect(bodies[1]).toContain(`if ($vm.State -eq 'Saved') { Start-VM -Name 'app''01 $(evil)'`);
    // the task is named after this run (a heal removes only a dead run's own tasks) and fires after the
    // requested 1 s + 60 s grace + the Save-VM step's own 30 s timeout: never while the save is still running
    expect(bodies[2]).toMatch(/Register-ScheduledTask -TaskName 'blackout-restore-[0-9a-f]{8}-[0-9a-f]{8}'.*-User 'SYSTEM'/);
    expect(bodies[2]).toContain('AddSeconds(91)');
    expect(bodies[3]).toBe(`Save-VM -Name 'app''01 $(evil)'`);
    // once the save took effect: a watchdog for the requested 1 s + 60 s grace from now, then the early one ends
    expect(bodies[4]).toContain('AddSeconds(61)');
    expect(bodies[5]).toMatch(/^Unregister-ScheduledTask -TaskName 'blackout-restore-[0-9a-f]{8}-[0-9a-f]{8}' -Confirm:\$false/);
    expect(bodies[6]).toBe(`Start-VM -Name 'app''01 $(evil)'`);
    expect(bodies[7]).toMatch(/^Unregister-ScheduledTask -TaskName 'blackout-restore-[0-9a-f]{8}-[0-9a-f]{8}' -Confirm:\$false/);
    // heal no longer removes every blackout task on the host (another run's included)
    expect(bodies[1]).not.toContain('blackout-restore-*');
    // the task's own action is an encoded Start-VM of the same VM
    const inner = /-EncodedCommand ([A-Za-z0-9+/=]+)'/.exec(bodies[2]!)![1]!;
    // … retried until it succeeds (a Start-VM while the save still runs fails)
    const task = Buffer.from(inner, 'base64').toString('utf16le');
    expect(task).toMatch(/for \(\$i = 1; \$i -le 120; \$i\+\+\) \{\n  try \{\nStart-VM -Name 'app''01 \$\(evil\)'\n    exit 0\n  \} catch \{\n    Start-Sleep -Seconds 5/);
    expect(fake.recorded.every((r) => /^powershell\.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand [A-Za-z0-9+/=]+$/.test(r.command))).toBe(true);
  });

  it('cable: reads the adapter and its switch before the cut, reconnects to that switch', async () => {
    fake.rules.push({ match: ').State', stdout: 'Running\r\n' }, { match: 'Get-VMNetworkAdapter -VMName', stdout: 'Network Adapter\tvSwitch Prod\r\n' });
    const { injector } = makeInjector({ kind: 'hyperv', ssh: ssh(), vm: 'app01', mode: 'cable' });
    await injector.preflight();
    await injector.cut(500);
    await injector.restore('scheduled');
    const bodies = fake.commands().map(body);
    expect(bodies).toContain(`Disconnect-VMNetworkAdapter -VMName 'app01' -Name 'Network Adapter'`);
    expect(bodies).toContain(`Connect-VMNetworkAdapter -VMName 'app01' -Name 'Network Adapter' -SwitchName 'vSwitch Prod'`);
    await injector.dispose?.();
  });

  it('a failed cut is undone idempotently and the watchdog disarmed; a refused preflight names the state', async () => {
    fake.rules.push({ match: ').State', stdout: 'Running\r\n' }, { match: 'Save-VM -Name', code: 1, stderr: 'The operation failed: VMMS busy' });
    const { injector } = makeInjector({ kind: 'hyperv', ssh: ssh(), vm: 'app01', mode: 'save' });
    await injector.preflight();
    await expect(injector.cut(1000)).rejects.toThrow(/Save-VM.*exit 1: The operation failed: VMMS busy/);
    await injector.restore('error'); // what the runner does after a failed cut
    const bodies = fake.commands().map(body);
    expect(bodies.slice(1).map((b) => b.split('\n')[0]!.split(' ')[0])).toEqual(['$action', 'Save-VM', '$vm', 'Unregister-ScheduledTask']);
    expect(bodies[3]).toContain(`if ($vm.State -eq 'Saved') { Start-VM -Name 'app01' }`);
    fake.rules.length = 0;
    fake.rules.push({ match: ').State', stdout: 'Off\r\n' });
    const off = makeInjector({ kind: 'hyperv', ssh: ssh(), vm: 'app01', mode: 'save' }).injector;
    await expect(off.preflight()).rejects.toThrow(/VM app01 must be Running: Off/);
    await injector.dispose?.();
    await off.dispose?.();
  });

  it('quick migration is self-timed: cut starts Move-ClusterVirtualMachineRole, restore waits for it', async () => {
    fake.rules.push({ match: ').State', stdout: 'Running\r\n' }, { match: 'Move-ClusterVirtualMachineRole', delayMs: 700 });
    const { injector } = makeInjector({ kind: 'hyperv', ssh: ssh(), vm: 'app01', mode: 'quick-migration', node: 'HV02', cluster: 'CL01' });
    expect(injector.selfTimed).toBe(true);
    await injector.preflight();
    const cut = await injector.cut(0);
    const restored = await injector.restore('scheduled');
    expect(restored.t - cut.t).toBeGreaterThanOrEqual(650);
    expect(fake.commands().map(body)).toContain(`Move-ClusterVirtualMachineRole -Name 'app01' -Node 'HV02' -Cluster 'CL01' -MigrationType Quick | Out-Null`);
    await injector.dispose?.();
  });
});

describe('vsphere (govc) over SSH', () => {
  it('credentials travel on stdin as GOVC_* variables, never on the command line; restore retries then gives up to the watchdog', async () => {
    process.env.A_VS_PASSWORD = 'Vc-p@ss w0rd';
    fake.rules.push({ match: 'nohup', stdout: 'pid:4242\n' }, { match: 'vm.info', stdout: 'Name: app01\n  Power state: poweredOn\n' }, { match: 'device.connect', hang: true });
    const { injector, logs } = makeInjector({
      kind: 'vsphere',
      ssh: ssh(),
      url: 'https://vc.example.internal/sdk',
      username: 'ops@vsphere.local',
      password: { env: 'A_VS_PASSWORD' },
      vm: 'app01',
      mode: 'cable',
      timeout: 400,
    });
    await injector.preflight();
    await injector.cut(300);
    await expect(injector.restore('scheduled')).rejects.toThrow(/restore failed 3 times.*no answer within 400 ms.*watchdog/);
    expect(logs.filter((l) => l.includes('restore attempt')).length).toBe(3);
    const all = fake.recorded.map((r) => r.command).join('\n');
    expect(all).not.toContain('Vc-p@ss');
    const info = fake.recorded[0]!;
    expect(info.command).toBe(
      'IFS= read -r GOVC_URL && export GOVC_URL && IFS= read -r GOVC_USERNAME && export GOVC_USERNAME && IFS= read -r GOVC_PASSWORD && export GOVC_PASSWORD && exec govc vm.info -- app01',
    );
    expect(info.stdin).toBe('https://vc.example.internal/sdk\nops@vsphere.local\nVc-p@ss w0rd\n');
    const cmds = fake.recorded.map((r) => r.command);
    // the watchdog (armed through the arm script: a systemd timer where possible, else setsid nohup) retries the connect
    expect(cmds.some((c) => c.includes('systemd-run') && c.includes('nohup $s /bin/sh') && c.includes('until "$@"') && c.includes('govc device.connect -vm app01 -- ethernet-0'))).toBe(true);
    expect(cmds.some((c) => c.endsWith('exec govc device.disconnect -vm app01 -- ethernet-0'))).toBe(true);
    expect(cmds.filter((c) => c.endsWith('exec govc device.connect -vm app01 -- ethernet-0')).length).toBe(3);
    // only the early watchdog (armed before the cut) was ended, once the cut took effect; the one armed
    // after it was not disarmed: it is the restore of last resort
    expect(cmds.filter((c) => c.startsWith('kill '))).toEqual(['kill 4242']);
    await injector.dispose?.();
  });
});

describe('proxmox (qm) over SSH', () => {
  it('cable reads net0 and sets link_down=1, restores the line without it; hibernate is suspend --todisk / start', async () => {
    fake.rules.push(
      { match: 'qm status', stdout: 'status: running\n' },
      { match: 'qm config', stdout: 'boot: order=scsi0\nnet0: virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,link_down=1\n' },
      { match: 'nohup', stdout: 'pid:777\n' },
    );
    const { injector } = makeInjector({ kind: 'proxmox', ssh: ssh(), vmid: 101, mode: 'cable' });
    await injector.preflight();
    await injector.cut(200);
    await injector.restore('scheduled');
    expect(fake.commands().filter((c) => !c.includes('nohup'))).toEqual([
      'qm status 101',
      'qm config 101',
      'qm set 101 --net0 virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,link_down=1',
      'kill 777', // the early watchdog, once the cut took effect and the next one was armed
      'qm set 101 --net0 virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1',
      'kill 777',
    ]);
    await injector.dispose?.();
    fake.recorded.length = 0;
    const h = makeInjector({ kind: 'proxmox', ssh: ssh(), vmid: 101, mode: 'hibernate' }).injector;
    await h.preflight();
    await h.cut(200);
    await h.restore('scheduled');
    expect(fake.commands().filter((c) => !c.includes('nohup') && !c.startsWith('kill'))).toEqual(['qm status 101', 'qm suspend 101 --todisk 1', 'qm start 101']);
    await h.dispose?.();
  });
});

describe('libvirt live migration over SSH', () => {
  it('runs virsh migrate --live with the flags; a hung migration is aborted with domjobabort', async () => {
    fake.rules.push({ match: 'domstate', stdout: 'running\n' }, { match: 'migrate --live', hang: true });
    const { injector } = makeInjector({
      kind: 'libvirt',
      ssh: ssh(),
      uri: 'qemu:///system',
      domain: 'app01',
      mode: 'migrate-live',
      destination: 'qemu+ssh://kvm02.example.internal/system',
      migrateFlags: ['--persistent', '--undefinesource'],
      migrationTimeout: 1000,
    });
    await injector.preflight();
    await injector.cut(0);
    await expect(injector.restore('scheduled')).rejects.toThrow(/migrate-live failed after \d+ ms.*\(aborted\)/);
    expect(fake.commands()).toEqual([
      'virsh -c qemu:///system domstate -- app01',
      'virsh -c qemu:///system migrate --live --persistent --undefinesource -- app01 qemu+ssh://kvm02.example.internal/system',
      'virsh -c qemu:///system domjobabort -- app01',
    ]);
    await injector.dispose?.();
  });
});

describe('blackout run --dry-run', () => {
  it('prints the exact transcript with secret placeholders and connects to nothing', async () => {
    process.env.A_DRY_PW = 'never-printed-secret';
    const suite = writeSuite({
      name: 'vsphere dry run',
      target: { host: 'app01.example.internal' },
      probes: [{ name: 'ping', kind: 'icmp' }],
      injector: {
        kind: 'vsphere',
        ssh: { host: '192.0.2.77', user: 'ops', privateKeyFile: '/nonexistent/key', hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
        url: 'https://vc.example.internal/sdk',
        username: 'ops@vsphere.local',
        password: { env: 'A_DRY_PW' },
        vm: 'app 01',
        mode: 'suspend',
      },
      blackouts: ['2s', '5s'],
    });
    const r = await runCli(['run', suite, '--dry-run'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('never-printed-secret');
    expect(r.stdout).toContain('<secret from env A_DRY_PW>');
    expect(r.stdout).toContain(`exec govc vm.power -suspend -- 'app 01'`);
    expect(r.stdout).toMatch(/t\+2\.0\d\ds \[ssh ops@192\.0\.2\.77:22 hostkey SHA256:A+\] restore: .*exec govc vm\.power -on -- 'app 01'/);
    expect(r.stdout.match(/trial \d\/2/g)).toEqual(['trial 1/2', 'trial 2/2']);
    expect(r.stdout).toContain('nothing was executed');
  });
});
