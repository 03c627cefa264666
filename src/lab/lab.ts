/**
 * `blackout lab up | down | status`: the lab target.
 *
 * Safety by construction (docs/lab-facts.md: a host-side link down once sent lab
 * packets out of the default route):
 *  - before any lab interface exists, a `blackhole` route for the lab subnet
 *    (metric 4242, behind the connected route) and an nft guard that drops and
 *    counts any packet for the lab subnet leaving by an interface other than
 *    the lab's own (or lo) are in place;
 *  - the target namespace has no default route at all;
 *  - cuts never touch a link: they are nft drops inside the switch namespace.
 * Teardown removes the guard last.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, rmdirSync, statSync } from 'node:fs';
import { run, runIn, pidAlive } from '../transport/exec.ts';
import { sleep } from '../core/clock.ts';
import { services } from './services/index.ts';
import { DEFAULT_LAB, addSwitchPortChain, listLabs, readLabState, statePath, type LabState } from './state.ts';
import { readVmState, vmDown, vmProcessPids } from './vm.ts';

export { DEFAULT_LAB, addSwitchPortChain, listLabs, readLabState, statePath, type LabState };
import { topology, LAB_RUN_DIR, FREEZER_ROOT, OWNER_MARK, validateLabName, type Topology } from './topology.ts';
import { LAB_USER } from './services/ssh.ts';
import { cgroupVersion, chooseFreezer, detectFreezer } from './cgroup.ts';
import { thawCgroup } from './cgroup.ts';


async function netnsList(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list'], { allowFail: true });
  return out.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

const INDEX_DIR = `${LAB_RUN_DIR}/.index`;

/** A mkdir lock in the labs folder (atomic across processes); a lock older than 30 s is stale. */
async function withAllocLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = `${LAB_RUN_DIR}/.alloc-lock`;
  mkdirSync(LAB_RUN_DIR, { recursive: true });
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30_000) rmdirSync(lock);
      } catch {
        /* released meanwhile */
      }
      if (i > 600) throw new Error(`lab index allocation: ${lock} is held for too long`);
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    rmdirSync(lock);
  }
}

/**
 * Claims the lowest free lab index atomically (an O_EXCL claim file per
 * index), so labs brought up in parallel never share a subnet or interface
 * names. A claim whose lab has no state and no namespace any more is stale
 * and taken over. An index whose guard table exists but is not ours is
 * someone else's: skipped, never touched.
 */
async function allocateIndex(name: string): Promise<number> {
  mkdirSync(INDEX_DIR, { recursive: true });
  const tables = (await run('nft', ['list', 'tables', 'inet'], { allowFail: true })).stdout;
  const namespaces = await netnsList();
  for (let i = 0; i <= 250; i++) {
    const claim = `${INDEX_DIR}/${i}`;
    try {
      writeFileSync(claim, name, { flag: 'wx' });
    } catch {
      const owner = readFileSync(claim, 'utf8').trim();
      const live = owner === name || readLabState(owner)?.index === i || namespaces.includes(`bo-${owner}`);
      if (live && owner !== name) continue;
      writeFileSync(claim, name); // stale claim (its lab is gone), or our own from a failed up
    }
    // an interface of that index exists (a lab made by something that does not claim): not ours to reuse
    const foreign = existsSync(`/sys/class/net/bo${i}c`) && readLabState(name)?.index !== i;
    if (foreign || (tables.includes(`table inet bo_guard_${i}\n`) && !(await ownedTable('inet', `bo_guard_${i}`, null, null)))) {
      rmSync(claim, { force: true });
      continue;
    }
    return i;
  }
  throw new Error('no free lab index (250 labs are up)');
}

function releaseIndex(name: string, index: number | undefined): void {
  if (index === undefined) return;
  const claim = `${INDEX_DIR}/${index}`;
  if (existsSync(claim) && readFileSync(claim, 'utf8').trim() === name) rmSync(claim, { force: true });
}

export interface LabHealth {
  up: boolean;
  problems: string[];
}

/** Checks that the namespaces, the cut table and every service process are there. */
export async function labHealth(state: LabState): Promise<LabHealth> {
  const problems: string[] = [];
  const ns = await netnsList();
  if (!ns.includes(state.targetNs)) problems.push(`namespace ${state.targetNs} missing`);
  if (!ns.includes(state.switchNs)) problems.push(`namespace ${state.switchNs} missing`);
  // a lab brought up by an older blackout may lack services this one has: `up` rebuilds it
  const missing = services.filter((svc) => !(svc.name in state.services)).map((svc) => svc.name);
  if (missing.length) problems.push(`services missing (lab made by an older version?): ${missing.join(', ')}`);
  if (problems.length === 0) {
    const pids = await run('ip', ['netns', 'pids', state.targetNs], { allowFail: true });
    if (pids.stdout.trim() === '') problems.push('no server process runs in the target namespace');
    // safety: traffic for the target must leave by the lab's own link, and the guard must be there
    // (a lab whose link or guard was removed would send lab traffic out of the default route)
    const route = await run('ip', ['-o', 'route', 'get', state.targetAddress], { allowFail: true });
    if (!new RegExp(`\\bdev ${state.clientIf}\\b`).test(route.stdout)) problems.push(`the route to ${state.targetAddress} does not use the lab link ${state.clientIf} (${route.stdout.trim() || route.stderr.trim()})`);
    const guard = await run('nft', ['list', 'table', 'inet', state.guardTable], { allowFail: true });
    if (guard.code !== 0) problems.push(`the leak guard nft table inet ${state.guardTable} is missing`);
  }
  return { up: problems.length === 0, problems };
}

export interface UpOptions {
  log?: (line: string) => void;
}

/** Brings the lab up; idempotent: a healthy lab is left as it is. */
export async function labUp(name = DEFAULT_LAB, opts: UpOptions = {}): Promise<LabState> {
  validateLabName(name);
  const log = opts.log ?? (() => {});
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, nftables, cgroups)');
  const existing = readLabState(name);
  if (existing) {
    const health = await labHealth(existing);
    if (health.up) {
      await withAllocLock(installSupernetGuard); // (a lab from before the shared guard existed gets it too)
      log(`lab ${name} is already up (${existing.targetAddress})`);
      return existing;
    }
    log(`lab ${name} is half up (${health.problems.join('; ')}): tearing it down first`);
    await labDown(name, opts);
  } else if ((await netnsList()).some((n) => n === `bo-${name}` || n === `bo-${name}-sw`)) {
    // a lab whose state file is gone (e.g. /run was cleaned): clear it by name
    await labDown(name, opts);
  }
  // allocate + write the state under a cross-process lock: two `lab up` at once (parallel test
  // files) must never get the same index, or one's failed `up` tears down the other's guard and link
  const { t, state } = await withAllocLock(async () => {
    await installSupernetGuard();
    // the freezer this machine has (cgroup v1 freezer, or v2's cgroup.freeze), decided now
    const t = topology(name, await allocateIndex(name), detectFreezer().root);
    mkdirSync(t.dir, { recursive: true, mode: 0o755 });
    mkdirSync(`${t.dir}/secrets`, { recursive: true, mode: 0o700 });
    // write the state early, so a failed `up` can always be torn down by `down`
    const state: LabState = { ...t, createdAtMs: Date.now(), services: {} };
    writeFileSync(statePath(name), JSON.stringify(state, null, 2));
    return { t, state };
  });
  try {
    log(`guard: blackhole ${t.subnet} and nft table inet ${t.guardTable}`);
    await installGuard(t);
    log(`namespaces ${t.targetNs} (target) and ${t.switchNs} (switch)`);
    await buildNetwork(t);
    await installCutTable(t);
    mkdirSync(t.cgroup, { recursive: true });
    const cgv = cgroupVersion(t.cgroup);
    if (cgv === null) throw new Error(`the cgroup ${t.cgroup} has neither freezer.state (v1) nor cgroup.freeze (v2, Linux ≥ 5.2): no way to freeze the target`);
    log(`freezer: cgroup v${cgv} (${t.cgroup})`);
    await ensureLabUser();
    for (const svc of services) {
      const started = Date.now();
      state.services[svc.name] = await svc.start(t);
      log(`${svc.name} up on ${t.targetAddress}:${state.services[svc.name]?.port} (${Date.now() - started} ms)`);
    }
    writeFileSync(statePath(name), JSON.stringify(state, null, 2));
    return state;
  } catch (e) {
    log(`lab up failed: ${(e as Error).message}; tearing down`);
    await labDown(name, opts).catch(() => {});
    throw e;
  }
}

export const SUPERNET = '10.213.0.0/16';
export const SUPERNET_GUARD = 'blackout_guard';

/**
 * The second line of defence, shared by every lab: a blackhole route for the
 * whole lab range and a guard that drops (and counts) any packet for it
 * leaving by an interface that is not a lab client link or lo. It does not
 * depend on any one lab's state: if a lab's own link, route or guard vanish
 * (a crashed teardown, a foreign tool), its traffic still cannot leave the
 * machine. Installed before the first lab, removed after the last one.
 */
async function installSupernetGuard(): Promise<void> {
  await run('ip', ['route', 'replace', 'blackhole', SUPERNET, 'metric', '4242']);
  const exists = (await run('nft', ['list', 'table', 'inet', SUPERNET_GUARD], { allowFail: true })).code === 0;
  if (exists) return;
  await run('nft', ['-f', '-'], {
    input: `table inet ${SUPERNET_GUARD} {
  comment "${OWNER_MARK}*"
  counter leak { }
  chain guard_output {
    type filter hook output priority -301; policy accept;
    ip daddr ${SUPERNET} oifname != "lo" oifname != "bo*" counter name "leak" drop
  }
  chain guard_forward {
    type filter hook forward priority -301; policy accept;
    ip daddr ${SUPERNET} oifname != "lo" oifname != "bo*" counter name "leak" drop
  }
}
`,
  });
}

async function removeSupernetGuardIfLast(): Promise<void> {
  await withAllocLock(async () => {
    if (listLabs().length > 0) return;
    if ((await netnsList()).some((n) => n.startsWith('bo-'))) return;
    if (await ownedTable('inet', SUPERNET_GUARD, null, '*')) await run('nft', ['delete', 'table', 'inet', SUPERNET_GUARD], { allowFail: true });
    await run('ip', ['route', 'del', 'blackhole', SUPERNET, 'metric', '4242'], { allowFail: true });
    // the labs' parent freezer cgroup too, of either version (rmdir fails harmlessly while any child remains)
    for (const root of [FREEZER_ROOT, cgroup2Root()]) {
      if (!root) continue;
      try {
        rmdirSync(root);
      } catch {
        /* not there, or not empty */
      }
    }
  });
}

/** Packets the supernet guard stopped (should stay 0). */
export async function supernetLeakCount(): Promise<number> {
  const r = await run('nft', ['-j', 'list', 'counter', 'inet', SUPERNET_GUARD, 'leak']);
  const json = JSON.parse(r.stdout) as { nftables: Array<{ counter?: { packets: number } }> };
  return json.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
}

function cgroup2Root(): string | null {
  try {
    return chooseFreezer(readFileSync('/proc/self/mounts', 'utf8'), 'v2').root;
  } catch {
    return null;
  }
}

async function installGuard(t: Topology): Promise<void> {
  await run('ip', ['route', 'replace', 'blackhole', t.subnet, 'metric', '4242']);
  await run('nft', ['-f', '-'], {
    // a stale guard of ours (allocateIndex never hands out a foreign one) is replaced whole:
    // the comment, our ownership marker, is only taken when a table is created
    input: `${(await ownedTable('inet', t.guardTable, null, null)) ? `delete table inet ${t.guardTable}\n` : ''}table inet ${t.guardTable} {
  comment "${OWNER_MARK}${t.name}"
  counter leak { }
  chain guard_output {
    type filter hook output priority -300; policy accept;
    ip daddr ${t.subnet} oifname != { "${t.clientIf}", "lo" } counter name "leak" drop
  }
  chain guard_forward {
    type filter hook forward priority -300; policy accept;
    ip daddr ${t.subnet} oifname != { "${t.clientIf}", "lo" } counter name "leak" drop
  }
}
`,
  });
}

async function buildNetwork(t: Topology): Promise<void> {
  const ip = (...args: string[]) => run('ip', args);
  await ip('netns', 'add', t.targetNs);
  await ip('netns', 'add', t.switchNs);
  for (const ns of [t.targetNs, t.switchNs]) {
    await runIn(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  await ip('link', 'add', t.clientIf, 'type', 'veth', 'peer', 'name', t.clientPort, 'netns', t.switchNs);
  await ip('-n', t.switchNs, 'link', 'add', t.targetPort, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', t.targetNs);
  await ip('-n', t.switchNs, 'link', 'add', t.bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
  for (const port of [t.clientPort, t.targetPort]) {
    await ip('-n', t.switchNs, 'link', 'set', port, 'master', t.bridge);
    await ip('-n', t.switchNs, 'link', 'set', port, 'up');
  }
  await ip('-n', t.switchNs, 'link', 'set', t.bridge, 'up');
  await run('sysctl', ['-q', '-w', `net.ipv6.conf.${t.clientIf}.disable_ipv6=1`]);
  await ip('addr', 'add', `${t.clientAddress}/24`, 'dev', t.clientIf);
  await ip('link', 'set', t.clientIf, 'up');
  await ip('-n', t.targetNs, 'addr', 'add', `${t.targetAddress}/24`, 'dev', 'eth0');
  await ip('-n', t.targetNs, 'link', 'set', 'eth0', 'up');
}

/**
 * The cut table in the switch: an IP (and an ARP) set with per-element
 * timeouts, and an ingress chain on every switch port that drops packets from
 * or to an address in the set. A cut is one element added with a timeout, so
 * the kernel itself restores the link when the deadline passes, whether or not
 * the harness is still alive.
 */
async function installCutTable(t: Topology): Promise<void> {
  await runIn(t.switchNs, 'nft', ['-f', '-'], {
    input: `table netdev ${t.cutTable} {
  comment "${OWNER_MARK}${t.name}"
  set cut4 { type ipv4_addr; flags timeout; }
  set cutarp { type ipv4_addr; flags timeout; }
}
`,
  });
  for (const port of [t.clientPort, t.targetPort]) await addSwitchPortChain(t, port);
}


async function ensureLabUser(): Promise<void> {
  const r = await run('id', ['-u', LAB_USER], { allowFail: true });
  if (r.code === 0) return;
  // password field "*": no password, key login only (a "!" would be refused as locked with UsePAM no)
  await run('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/bin/sh', '--password', '*', LAB_USER]);
}

/** Reads the guard's leak counter: packets for the lab subnet that tried to leave by another interface. */
export async function guardLeakCount(t: Topology): Promise<number> {
  const r = await run('nft', ['-j', 'list', 'counter', 'inet', t.guardTable, 'leak']);
  const json = JSON.parse(r.stdout) as { nftables: Array<{ counter?: { packets: number } }> };
  const c = json.nftables.find((x) => x.counter)?.counter;
  if (!c) throw new Error('guard counter not found');
  return c.packets;
}

/** true when the table carries our ownership marker (for lab `name`, or for any lab when name is null) */
async function ownedTable(family: string, table: string, ns: string | null, name: string | null): Promise<boolean> {
  // the JSON listing of nft 1.0.6 omits table comments: read the text form
  const args = ['list', 'table', family, table];
  const r = ns ? await runIn(ns, 'nft', args, { allowFail: true }) : await run('nft', args, { allowFail: true });
  if (r.code !== 0) return false;
  return name === null ? r.stdout.includes(`comment "${OWNER_MARK}`) : r.stdout.includes(`"${OWNER_MARK}${name}"`);
}

/** Tears the lab down completely. Only touches what carries this lab's ownership marker or names. */
export async function labDown(name = DEFAULT_LAB, opts: UpOptions = {}): Promise<string[]> {
  validateLabName(name);
  const log = opts.log ?? (() => {});
  const state = readLabState(name);
  const removed: string[] = [];
  const ns = await netnsList();
  const targetNs = state?.targetNs ?? `bo-${name}`;
  const switchNs = state?.switchNs ?? `bo-${name}-sw`;
  const cgroup = state?.cgroup ?? `${detectFreezerRoot()}/${name}`;

  // 0. the lab's VM first: its QEMU processes, watchdogs, taps and state files
  if (state) {
    if (readVmState(state)) removed.push(...(await vmDown(state).catch((e: Error) => [`vm down failed: ${e.message}`])));
  }
  // 1. thaw, so frozen processes can receive SIGKILL and exit
  thawCgroup(cgroup);
  // 2. end every process of the lab, by PID: the cgroup's and the namespaces'
  const pids = new Set<number>();
  if (existsSync(`${cgroup}/cgroup.procs`)) {
    for (const l of readFileSync(`${cgroup}/cgroup.procs`, 'utf8').split('\n')) if (l.trim()) pids.add(Number(l));
  }
  for (const n of [targetNs, switchNs]) {
    if (!ns.includes(n)) continue;
    const r = await run('ip', ['netns', 'pids', n], { allowFail: true });
    for (const l of r.stdout.split('\n')) if (l.trim()) pids.add(Number(l));
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (let i = 0; i < 50 && [...pids].some(pidAlive); i++) await sleep(50);
  if (pids.size) removed.push(`${pids.size} processes`);
  if (existsSync(cgroup)) {
    for (let i = 0; i < 20; i++) {
      try {
        rmdirSync(cgroup);
        removed.push(`cgroup ${cgroup}`);
        break;
      } catch {
        await sleep(50); // the cgroup empties a moment after its last process is reaped
      }
    }
  }
  // services' own traces outside the lab dir (e.g. the rdp lab user)
  for (const svc of services) {
    if (!svc.stop) continue;
    try {
      removed.push(...(await svc.stop(name, state)));
    } catch (e) {
      log(`${svc.name}: cleanup failed: ${(e as Error).message}`);
    }
  }
  // 3. namespaces (their veths, the bridge and the cut table go with them)
  if (state) await run('ip', ['link', 'del', state.clientIf], { allowFail: true });
  for (const n of [targetNs, switchNs]) {
    if (ns.includes(n)) {
      await run('ip', ['netns', 'del', n]);
      removed.push(`namespace ${n}`);
    }
  }
  // 4. the guard, last
  if (state) {
    if (await ownedTable('inet', state.guardTable, null, name)) {
      await run('nft', ['delete', 'table', 'inet', state.guardTable]);
      removed.push(`nft table inet ${state.guardTable}`);
    }
    await run('ip', ['route', 'del', 'blackhole', state.subnet, 'metric', '4242'], { allowFail: true });
  }
  rmSync(`${LAB_RUN_DIR}/${name}`, { recursive: true, force: true });
  releaseIndex(name, state?.index);
  await removeSupernetGuardIfLast();
  log(removed.length ? `lab ${name} down: removed ${removed.join(', ')}` : `lab ${name} was not up`);
  return removed;
}

function detectFreezerRoot(): string {
  try {
    return detectFreezer().root;
  } catch {
    return FREEZER_ROOT;
  }
}

export interface LabStatus {
  name: string;
  up: boolean;
  problems: string[];
  vm?: { up: boolean; address: string; services: Record<string, { port: number }> } | null;
  target?: { address: string; namespace: string };
  client?: { address: string; interface: string };
  services?: Record<string, { port: number }>;
}

export async function labStatus(name = DEFAULT_LAB): Promise<LabStatus> {
  const state = readLabState(name);
  if (!state) return { name, up: false, problems: ['not up'] };
  const h = await labHealth(state);
  return {
    name,
    up: h.up,
    problems: h.problems,
    target: { address: state.targetAddress, namespace: state.targetNs },
    client: { address: state.clientAddress, interface: state.clientIf },
    services: Object.fromEntries(Object.entries(state.services).map(([k, v]) => [k, { port: v.port }])),
    vm: await vmStatus(state),
  };
}

async function vmStatus(state: LabState): Promise<LabStatus['vm']> {
  const vm = readVmState(state);
  if (!vm) return null;
  return { up: vmProcessPids(state).length > 0, address: vm.address, services: Object.fromEntries(Object.entries(vm.ports).map(([k, p]) => [k, { port: p }])) };
}
