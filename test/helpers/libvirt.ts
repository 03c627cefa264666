/**
 * A private libvirt daemon for the libvirt adapter's tests: Debian's libvirtd
 * (qemu driver) and virtlogd, started inside the lab's switch namespace
 * (nsenter --net only, so cgroups and /sys stay the host's), with its own
 * socket folder. The guest (scripts/build-libvirt-guest.sh: Debian kernel +
 * busybox, TCG) gets a tap on the lab bridge, so the harness reaches it through
 * the lab's guarded client link like any lab target.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { run, pidAlive } from '../../src/transport/exec.ts';
import type { LabState } from '../../src/lab/state.ts';
import { ROOT } from './lab.ts';

export interface Libvirtd {
  dir: string;
  uri: string;
  virsh(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} within ${ms} ms`);
}

async function killPidFile(file: string): Promise<void> {
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!pid || !pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  await waitFor(() => !pidAlive(pid), 10_000, `pid ${pid} did not exit`).catch(() => process.kill(pid, 'SIGKILL'));
}

export async function startLibvirtd(lab: LabState): Promise<Libvirtd> {
  const dir = `/run/blackout/${lab.name}-libvirt`;
  await killPidFile(join(dir, 'libvirtd.pid'));
  await killPidFile(join(dir, 'virtlogd.pid'));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'libvirtd.conf'), [`unix_sock_dir = "${dir}"`, 'auth_unix_rw = "none"', 'auth_unix_ro = "none"', `log_outputs = "3:file:${dir}/libvirtd.log"`, ''].join('\n'));
  const ns = `--net=/run/netns/${lab.switchNs}`;
  // the qemu driver logs the guests' stdio through virtlogd (its socket is the system one)
  if (!existsSync('/run/libvirt/virtlogd-sock') || !(await socketAlive('/run/libvirt/virtlogd-sock'))) {
    spawn('nsenter', [ns, 'virtlogd', '-p', join(dir, 'virtlogd.pid')], { detached: true, stdio: 'ignore' }).unref();
    await waitFor(() => socketAlive('/run/libvirt/virtlogd-sock'), 10_000, 'virtlogd did not start');
  }
  const log = join(dir, 'libvirtd.stderr');
  const d = spawn('sh', ['-c', 'exec nsenter "$@" >"$0" 2>&1', log, ns, 'libvirtd', '-f', join(dir, 'libvirtd.conf'), '-p', join(dir, 'libvirtd.pid')], { detached: true, stdio: 'ignore' });
  d.unref();
  const sock = join(dir, 'libvirt-sock');
  await waitFor(() => socketAlive(sock), 20_000, `libvirtd did not open ${sock} (${existsSync(log) ? readFileSync(log, 'utf8').slice(-500) : ''})`);
  const uri = `qemu:///system?socket=${sock}`;
  const virsh = async (...args: string[]) => (await run('virsh', ['-c', uri, ...args], { timeoutMs: 60_000 })).stdout;
  return {
    dir,
    uri,
    virsh,
    async stop() {
      const doms = await run('virsh', ['-c', uri, 'list', '--name'], { allowFail: true, timeoutMs: 10_000 });
      for (const n of doms.stdout
        .split('\n')
        .map((x) => x.trim())
        .filter(Boolean))
        await run('virsh', ['-c', uri, 'destroy', n], { allowFail: true, timeoutMs: 20_000 });
      await killPidFile(join(dir, 'libvirtd.pid'));
      await killPidFile(join(dir, 'virtlogd.pid'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function socketAlive(path: string): Promise<boolean> {
  return new Promise((res) => {
    if (!existsSync(path)) return res(false);
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

export async function buildGuest(): Promise<string> {
  const r = await run('bash', [join(ROOT, 'scripts/build-libvirt-guest.sh')], { timeoutMs: 120_000 });
  return r.stdout.trim().split('\n').pop()!;
}

/** Starts a transient TCG domain on the lab bridge; resolves once its echo port answers. */
export async function startGuest(lv: Libvirtd, guestDir: string, opts: { name: string; address: string; mac: string; bridge: string }): Promise<void> {
  const xml = `<domain type='qemu'>
  <name>${opts.name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>${guestDir}/vmlinuz</kernel><initrd>${guestDir}/initramfs.cpio.gz</initrd>
  <cmdline>console=ttyS0 quiet clocksource=hpet bo.ip=${opts.address}/24</cmdline></os>
  <features><acpi/><apic/></features>
  <clock offset='utc'><timer name='hpet' present='yes'/></clock>
  <on_poweroff>destroy</on_poweroff><on_crash>destroy</on_crash>
  <devices>
    <interface type='bridge'><source bridge='${opts.bridge}'/><model type='virtio'/><mac address='${opts.mac}'/></interface>
    <serial type='file'><source path='${lv.dir}/${opts.name}.console'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
  const file = join(lv.dir, `${opts.name}.xml`);
  writeFileSync(file, xml);
  await lv.virsh('create', file);
  await waitFor(
    () =>
      new Promise<boolean>((res) => {
        const s = connect({ host: opts.address, port: 7, timeout: 1000 });
        s.once('connect', () => {
          s.destroy();
          res(true);
        });
        s.once('error', () => res(false));
        s.once('timeout', () => {
          s.destroy();
          res(false);
        });
      }),
    90_000,
    `guest ${opts.name} did not answer on ${opts.address}:7`,
  );
}

/** The guest's own clock (uptime, s) and the host's monotonic clock (ms) read together. */
export function guestClock(address: string): Promise<{ guestS: number; hostMs: number }> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const s = connect({ host: address, port: 8, timeout: 5000 });
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => {
      const t1 = performance.now();
      const up = Number(data.trim().split(/\s+/).pop());
      if (!Number.isFinite(up)) return rej(new Error(`guest clock: ${JSON.stringify(data)}`));
      res({ guestS: up, hostMs: (t0 + t1) / 2 });
    });
    s.on('error', rej);
    s.on('timeout', () => rej(new Error('guest clock: timeout')));
  });
}
