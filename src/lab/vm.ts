/**
 * The lab's second target: a real QEMU guest on the lab switch.
 *
 *   root namespace (the harness)  bo<i>c 10.213.<i>.1 ──┐
 *   bo-<name>-sw: br0 ── bo<i>v0 (tap) ── QEMU ── guest eth0 10.213.<i>.10
 *                    └── bo<i>v1 (tap) ── the next QEMU (migration target)
 *
 * QEMU runs inside the switch namespace (its taps live there, and a live
 * migration's TCP stream stays on that namespace's loopback), under TCG
 * (KVM is unusable on this host, docs/lab-facts.md). Each QEMU process is an
 * "instance" with a generation number; a migration starts generation n+1 on
 * the other tap and, once the guest runs there, ends generation n. Every tap
 * gets the lab's cut chain, so the cable-pull injector cuts the guest too.
 *
 * QEMU outlives the process that started it (detached): `blackout lab up --vm`
 * exits and a later `blackout run` finds the guest through vm.json.
 * Everything the VM owns lives in <lab dir>/vm/, and every process it starts
 * carries that path in its command line, which is how vmDown finds them all
 * (by PID) even when vm.json is lost.
 */
import { spawn } from 'node:child_process';
import { spawnWithoutSendLease } from './lease.ts';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { run, runIn, pidAlive } from '../transport/exec.ts';
import { sleep } from '../core/clock.ts';
import type { ResolvedTarget } from '../core/target.ts';
import { ensureGuestImage, type GuestImage } from './guest-image.ts';
import { addSwitchPortChain, readLabState, type LabState } from './state.ts';
import { LAB_RUN_DIR, type Topology } from './topology.ts';

export const VM_DEFAULT_MEMORY_MB = 128;
export const VM_PORTS = { echo: 7, http: 80, ssh: 22 } as const;

/** One QEMU process holding (or about to hold) the guest. */
export interface VmInstance {
  generation: number;
  pid: number;
  tap: string;
  /** the harness's QMP socket */
  qmp: string;
  /** a second QMP monitor for heal and the watchdog (a QMP socket serves one client at a time) */
  qmpAux: string;
  /** QEMU's own stderr */
  log: string;
  startedAtWallMs: number;
  /** the -incoming argument it was started with, if any */
  incoming?: string;
}

/** <lab dir>/vm/vm.json */
export interface VmState {
  version: 1;
  lab: string;
  dir: string;
  address: string;
  prefixLength: number;
  mac: string;
  memoryMB: number;
  image: GuestImage;
  /** the guest's serial console (every instance appends to it) */
  console: string;
  /** /proc/sys/kernel/random/boot_id at boot: a migration must not change it */
  bootId: string;
  bootedAtWallMs: number;
  /** QEMU start → guest answering on the echo port */
  bootMs: number;
  current: VmInstance;
  nextGeneration: number;
  ports: { echo: number; http: number; ssh: number };
  ssh: { user: string; privateKeyFile: string; hostKey: string; hostKeyFile: string };
}

export interface VmUpOptions {
  /** guest memory, 96 MB minimum with the Debian kernel; default 128 */
  memoryMB?: number;
  /** bound on QEMU start → guest answering; default 90 s (TCG on a loaded 2-core CI machine) */
  bootTimeoutMs?: number;
  log?: (line: string) => void;
}

type LabRef = Topology | string;

function topo(lab: LabRef): Topology {
  if (typeof lab !== 'string') return lab;
  const s = readLabState(lab);
  if (!s) throw new Error(`lab ${lab} is not up (blackout lab up)`);
  return s;
}

export function vmDir(lab: Topology): string {
  return `${lab.dir}/vm`;
}
export function vmAddress(lab: Topology): string {
  return `${lab.prefix}.10`;
}
/** Fixed per lab: locally administered QEMU prefix, the lab index, .10 like the address. */
export function vmMac(lab: Topology): string {
  return `52:54:00:d3:${lab.index.toString(16).padStart(2, '0')}:0a`;
}
/** Two taps per lab, alternating with each migration (generation parity). */
export function vmTap(lab: Topology, generation: number): string {
  return `bo${lab.index}v${generation % 2}`;
}

/** The VM's state, or null when the lab has no VM. Accepts a lab's topology or its name. */
export function readVmState(lab: LabRef): VmState | null {
  const dir = typeof lab === 'string' ? `${LAB_RUN_DIR}/${lab}/vm` : vmDir(lab);
  const p = `${dir}/vm.json`;
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as VmState;
  } catch {
    return null;
  }
}

/** Atomic (rename), so a reader or a watchdog never sees half a file. */
export function writeVmState(state: VmState): void {
  const p = `${state.dir}/vm.json`;
  writeFileSync(`${p}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${p}.tmp`, p);
}

/** The target `lab-vm` for the runner: the guest's address, services and SSH credentials. */
export function vmTarget(lab: LabState, vm: VmState): ResolvedTarget {
  return {
    name: `${lab.name}-vm`,
    address: vm.address,
    lab,
    services: {
      echo: { port: vm.ports.echo },
      http: { port: vm.ports.http, bootIdPath: '/boot_id' },
      ssh: {
        host: vm.address,
        port: vm.ports.ssh,
        user: vm.ssh.user,
        privateKeyFile: vm.ssh.privateKeyFile,
        hostKey: vm.ssh.hostKey,
      },
    },
  };
}

// ---------------------------------------------------------------- processes

/** PIDs of every process whose command line names this VM's directory (QEMU instances, watchdogs). */
export function vmProcessPids(lab: Topology): number[] {
  return pidsNaming(`${vmDir(lab)}/`);
}

function pidsNaming(needle: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) pids.push(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** True when `pid` is alive and still the process we started (its command line names our VM directory): guards against PID reuse. */
export function isVmProcess(lab: Topology, pid: number): boolean {
  if (!pid || !pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${vmDir(lab)}/`);
  } catch {
    return false;
  }
}

/**
 * True when `pid` has exited. A zombie counts as exited: QEMU processes
 * outlive their starter and are reaped by PID 1, which here may take a second.
 */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the state follows the parenthesised command name
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

const alive = (pid: number) => !processGone(pid);

/** Ends processes by PID: SIGTERM, then SIGKILL after `graceMs`. */
export async function endPids(pids: number[], graceMs = 1000): Promise<void> {
  const live = pids.filter(alive);
  for (const p of live) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && live.some(alive)) await sleep(20);
  for (const p of live.filter(alive)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 100 && live.some(alive); i++) await sleep(20);
}

// ---------------------------------------------------------------- taps

async function tapExists(lab: Topology, tap: string): Promise<boolean> {
  const r = await runIn(lab.switchNs, 'ip', ['link', 'show', 'dev', tap], { allowFail: true });
  return r.code === 0;
}

/**
 * Removes a tap and its cut chain. The chain goes first: a netdev chain bound
 * to a vanished device would not re-attach to a new tap of the same name.
 */
export async function removeTap(lab: Topology, tap: string): Promise<void> {
  await runIn(lab.switchNs, 'nft', ['delete', 'chain', 'netdev', lab.cutTable, `port_${tap}`], { allowFail: true });
  if (await tapExists(lab, tap)) await runIn(lab.switchNs, 'ip', ['link', 'del', 'dev', tap], { allowFail: true });
}

async function createTap(lab: Topology, tap: string): Promise<void> {
  await removeTap(lab, tap);
  const ip = (...args: string[]) => runIn(lab.switchNs, 'ip', args);
  await ip('tuntap', 'add', 'dev', tap, 'mode', 'tap');
  await ip('link', 'set', tap, 'master', lab.bridge);
  await ip('link', 'set', tap, 'up');
  // the lab's cut applies to every switch port, the guest's too
  await addSwitchPortChain(lab, tap);
}

// ---------------------------------------------------------------- instances

export interface InstanceSpec {
  image: GuestImage;
  mac: string;
  memoryMB: number;
  address: string;
  prefixLength: number;
  console: string;
}

/**
 * Starts one QEMU process for generation `generation` on its tap, inside the
 * switch namespace, detached. With `incoming` it waits for a migration
 * (`defer`, `tcp:127.0.0.1:PORT` or `exec:cat FILE`) instead of booting.
 * Returns once its QMP socket answers (bounded).
 */
export async function startInstance(lab: Topology, spec: InstanceSpec, generation: number, incoming?: string): Promise<VmInstance> {
  const dir = vmDir(lab);
  mkdirSync(dir, { recursive: true });
  const tap = vmTap(lab, generation);
  const inst: VmInstance = {
    generation,
    pid: 0,
    tap,
    qmp: `${dir}/qmp-${generation}.sock`,
    qmpAux: `${dir}/qmp-${generation}-aux.sock`,
    log: `${dir}/qemu-${generation}.log`,
    startedAtWallMs: Date.now(),
    incoming,
  };
  rmSync(inst.qmp, { force: true });
  rmSync(inst.qmpAux, { force: true });
  await createTap(lab, tap);
  const append = [
    'console=ttyS0',
    'panic=-1', // a panic ends QEMU (-no-reboot): a failed boot is seen at once, not after the timeout
    'quiet',
    `bo.ip=${spec.address}/${spec.prefixLength}`,
    `bo.host=bo-${lab.name}-vm`,
  ].join(' ');
  // Source and destination of a migration must be configured identically:
  // every instance gets exactly these arguments (only -incoming differs).
  const args = [
    '-name',
    `bo-${lab.name}-vm,process=bo-${lab.name}-vm`,
    '-machine',
    'pc',
    '-accel',
    'tcg',
    '-cpu',
    'qemu64',
    '-smp',
    '1',
    '-m',
    String(spec.memoryMB),
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-no-reboot',
    '-kernel',
    spec.image.kernel,
    '-initrd',
    spec.image.initramfs,
    '-append',
    append,
    '-chardev',
    `file,id=con,path=${spec.console},append=on`,
    '-serial',
    'chardev:con',
    '-netdev',
    `tap,id=n0,ifname=${tap},script=no,downscript=no`,
    // romfile= : no iPXE option ROM, the guest boots straight from -kernel (saves ~1 s under TCG)
    '-device',
    `virtio-net-pci,netdev=n0,mac=${spec.mac},romfile=`,
    '-qmp',
    `unix:${inst.qmp},server=on,wait=off`,
    '-qmp',
    `unix:${inst.qmpAux},server=on,wait=off`,
    ...(incoming ? ['-incoming', incoming] : []),
  ];
  const logFd = openSync(inst.log, 'a');
  try {
    // `ip netns exec` execs QEMU: the child's PID is QEMU's
    // (a migration's new QEMU is started during a run: it must not inherit the run's send lease)
    const child = spawnWithoutSendLease(() =>
      spawn('ip', ['netns', 'exec', lab.switchNs, 'qemu-system-x86_64', ...args], {
        detached: true,
        stdio: ['ignore', logFd, logFd],
      }),
    );
    child.unref();
    if (child.pid === undefined) throw new Error('could not start qemu-system-x86_64');
    inst.pid = child.pid;
  } finally {
    closeSync(logFd);
  }
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (!pidAlive(inst.pid)) throw new Error(`QEMU exited at start: ${tail(inst.log, 10)}`);
      if (existsSync(inst.qmp) && existsSync(inst.qmpAux)) break;
      if (Date.now() > deadline) throw new Error(`QEMU made no QMP socket within 20 s: ${tail(inst.log, 10)}`);
      await sleep(20);
    }
  } catch (e) {
    await stopInstance(lab, inst);
    throw e;
  }
  return inst;
}

/** Ends one instance by PID and removes its tap and sockets. */
export async function stopInstance(lab: Topology, inst: VmInstance, opts: { graceMs?: number; keepTap?: boolean } = {}): Promise<void> {
  if (isVmProcess(lab, inst.pid)) await endPids([inst.pid], opts.graceMs ?? 1000);
  // keepTap: a newer instance already uses the same tap (same generation parity)
  if (!opts.keepTap) await removeTap(lab, inst.tap);
  rmSync(inst.qmp, { force: true });
  rmSync(inst.qmpAux, { force: true });
}

// ---------------------------------------------------------------- guest checks

/** The last `n` lines of a log file ("" when missing), terminal escapes removed. */
export function tail(path: string, n: number): string {
  try {
    const text = readFileSync(path, 'utf8')
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .replace(/\r/g, '');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .slice(-n)
      .join('\n');
  } catch {
    return '';
  }
}

/** GET http://address/boot_id from the guest's busybox httpd (bounded). */
export function fetchBootId(address: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: VM_PORTS.http, path: '/boot_id', timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const id = body.trim();
        if (res.statusCode === 200 && /^[0-9a-f-]{36}$/.test(id)) resolve(id);
        else reject(new Error(`boot_id: HTTP ${res.statusCode} "${id.slice(0, 60)}"`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`boot_id: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Retries fetchBootId until `timeoutMs` (right after a migration the first request may race the resume). */
export async function fetchBootIdRetry(address: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | null = null;
  while (Date.now() < deadline) {
    try {
      return await fetchBootId(address, Math.min(3000, Math.max(500, deadline - Date.now())));
    } catch (e) {
      last = e as Error;
      await sleep(100);
    }
  }
  throw new Error(`could not read the guest's boot id within ${timeoutMs} ms: ${last?.message ?? ''}`);
}

function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
  });
}

/** The switch port (tap) the bridge has learned the guest's MAC on, or null. */
export async function bridgePortOf(lab: Topology, mac: string): Promise<string | null> {
  const r = await runIn(lab.switchNs, 'bridge', ['-j', 'fdb', 'show', 'br', lab.bridge], { allowFail: true });
  try {
    const rows = JSON.parse(r.stdout) as Array<{ mac: string; ifname?: string; flags?: string[]; state?: string }>;
    const hit = rows.find((x) => x.mac.toLowerCase() === mac.toLowerCase() && x.ifname && !(x.flags ?? []).includes('self') && x.state !== 'permanent');
    return hit?.ifname ?? null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- up / down

/**
 * Boots the guest in the lab (idempotent: a VM that answers is left as it
 * is). Waits, bounded, until the guest answers on its echo port; a failed
 * boot throws with the tail of the guest console, and leaves nothing behind.
 */
export async function vmUp(labRef: Topology | string, opts: VmUpOptions = {}): Promise<VmState> {
  const lab = topo(labRef);
  const log = opts.log ?? (() => {});
  const memoryMB = opts.memoryMB ?? VM_DEFAULT_MEMORY_MB;
  if (memoryMB < 96) throw new Error(`guest memory ${memoryMB} MB: the Debian kernel needs at least 96 MB`);
  const existing = readVmState(lab);
  if (existing && isVmProcess(lab, existing.current.pid) && (await tcpAnswers(existing.address, VM_PORTS.echo, 2000))) {
    log(`VM of lab ${lab.name} is already up (${existing.address}, pid ${existing.current.pid})`);
    return existing;
  }
  if (existing || vmProcessPids(lab).length) {
    log(`VM of lab ${lab.name} is half up: removing it first`);
    await vmDown(lab);
  }
  const image = await ensureGuestImage();
  const dir = vmDir(lab);
  mkdirSync(dir, { recursive: true });
  const spec: InstanceSpec = {
    image,
    mac: vmMac(lab),
    memoryMB,
    address: vmAddress(lab),
    prefixLength: 24,
    console: `${dir}/console.log`,
  };
  rmSync(spec.console, { force: true });
  const bootTimeoutMs = opts.bootTimeoutMs ?? 90_000;
  const started = Date.now();
  log(`booting guest (QEMU TCG, ${memoryMB} MB, kernel ${image.kernelVersion}) at ${spec.address}`);
  const inst = await startInstance(lab, spec, 0);
  const state: VmState = {
    version: 1,
    lab: lab.name,
    dir,
    address: spec.address,
    prefixLength: spec.prefixLength,
    mac: spec.mac,
    memoryMB,
    image,
    console: spec.console,
    bootId: '',
    bootedAtWallMs: started,
    bootMs: 0,
    current: inst,
    nextGeneration: 1,
    ports: { ...VM_PORTS },
    ssh: { user: image.user, privateKeyFile: image.privateKeyFile, hostKey: image.hostKey, hostKeyFile: image.hostKeyFile },
  };
  // written before the wait, so a failed or interrupted boot can always be torn down
  writeVmState(state);
  try {
    const deadline = started + bootTimeoutMs;
    for (;;) {
      if (!pidAlive(inst.pid)) throw new Error('QEMU exited during boot');
      if (/Kernel panic/.test(tail(spec.console, 40))) throw new Error('the guest kernel panicked');
      if (await tcpAnswers(spec.address, VM_PORTS.echo, 500)) break;
      if (Date.now() > deadline) throw new Error(`the guest did not answer on ${spec.address}:${VM_PORTS.echo} within ${bootTimeoutMs} ms`);
      await sleep(200);
    }
    state.bootMs = Date.now() - started;
    state.bootId = await fetchBootIdRetry(spec.address, 15_000);
  } catch (e) {
    const msg = `${(e as Error).message}\n--- guest console (${spec.console}, last lines) ---\n${tail(spec.console, 30)}\n--- QEMU log ---\n${tail(inst.log, 10)}`;
    await vmDown(lab).catch(() => {});
    throw new Error(msg);
  }
  writeVmState(state);
  log(`guest up in ${state.bootMs} ms (boot id ${state.bootId})`);
  return state;
}

/**
 * Removes the VM: ends every QEMU instance and watchdog of this lab by PID,
 * removes both taps with their cut chains, the sockets, the saved states and
 * the state files. Returns what it removed.
 */
export async function vmDown(labRef: Topology | string): Promise<string[]> {
  const lab = typeof labRef === 'string' ? readLabState(labRef) : labRef;
  const removed: string[] = [];
  if (!lab) {
    // no lab state (the lab is gone or half gone): end what still names the VM folder, remove the folder
    if (typeof labRef !== 'string') return removed;
    const dir = `${LAB_RUN_DIR}/${labRef}/vm`;
    const pids = pidsNaming(`${dir}/`);
    if (pids.length) {
      await endPids(pids);
      removed.push(`${pids.length} VM processes (${pids.join(', ')})`);
    }
    rmSync(dir, { recursive: true, force: true });
    return removed;
  }
  const state = readVmState(lab);
  const pids = new Set(vmProcessPids(lab));
  if (state && isVmProcess(lab, state.current.pid)) pids.add(state.current.pid);
  if (pids.size) {
    await endPids([...pids]);
    removed.push(`${pids.size} VM processes (${[...pids].join(', ')})`);
  }
  const nsUp = (await run('ip', ['netns', 'list'], { allowFail: true })).stdout.split('\n').some((l) => l.split(' ')[0] === lab.switchNs);
  if (nsUp) {
    for (const g of [0, 1]) {
      const tap = vmTap(lab, g);
      if (await tapExists(lab, tap)) removed.push(`tap ${tap}`);
      await removeTap(lab, tap);
    }
  }
  if (existsSync(vmDir(lab))) {
    rmSync(vmDir(lab), { recursive: true, force: true });
    removed.push(vmDir(lab));
  }
  return removed;
}
