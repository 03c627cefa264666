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
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, rmdirSync } from 'node:fs';
import { run, runIn, pidAlive } from '../transport/exec.ts';
import { acquireLease, describeHolder, writeHolder, type Lease } from '../transport/lease.ts';
import { acquireLabLease, sendLeaseHolders, trySendLeaseExclusive } from './lease.ts';
import { rangeConflicts } from './range.ts';
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
  return out.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

const INDEX_DIR = `${LAB_RUN_DIR}/.index`;
export const ALLOC_LOCK = `${LAB_RUN_DIR}/.alloc.lock`;
/** how long a `lab up`/`lab down` waits for another one's index allocation or guard change */
const ALLOC_WAIT_MS = 300_000;

/**
 * The labs' cross-process lock (index allocation, the shared guard): an
 * flock, so it is held exactly as long as its holder lives. It is never
 * broken by age: a slow holder (a slow `nft`) is waited for, a dead one has
 * already released it.
 */
export async function withAllocLock<T>(fn: () => Promise<T>, lockPath = ALLOC_LOCK): Promise<T> {
  mkdirSync(LAB_RUN_DIR, { recursive: true });
  const lease = await acquireLease(lockPath, 'exclusive', ALLOC_WAIT_MS);
  if (!lease) throw new Error(`lab index allocation: ${lockPath} has been held by ${describeHolder(lockPath).text} for more than ${ALLOC_WAIT_MS / 1000} s`);
  writeHolder(lease, 'lab index allocation');
  try {
    return await fn();
  } finally {
    lease.release();
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
    if (!new RegExp(`\\bdev ${state.clientIf}\\b`).test(route.stdout))
      problems.push(`the route to ${state.targetAddress} does not use the lab link ${state.clientIf} (${route.stdout.trim() || route.stderr.trim()})`);
    const guard = await run('nft', ['list', 'table', 'inet', state.guardTable], { allowFail: true });
    if (guard.code !== 0) problems.push(`the leak guard nft table inet ${state.guardTable} is missing`);
    problems.push(...(await sharedGuardProblems(state)));
  }
  return { up: problems.length === 0, problems };
}

/**
 * The second line of defence for this lab: the shared guard (present, in
 * its current form, exempting this lab's link by its exact name) and both
 * blackhole routes (the lab's /24 and the whole range).
 */
async function sharedGuardProblems(state: Topology): Promise<string[]> {
  const problems: string[] = [];
  const shared = await run('nft', ['list', 'table', 'inet', SUPERNET_GUARD], { allowFail: true });
  if (shared.code !== 0) problems.push(`the shared leak guard nft table inet ${SUPERNET_GUARD} is missing`);
  else if (!isCurrentSupernetGuard(shared.stdout))
    problems.push(`the shared leak guard inet ${SUPERNET_GUARD} is of an older form (a name wildcard on the output hook): \`blackout lab up\` rebuilds it`);
  else if (!new RegExp(`elements = \\{[^}]*"${state.clientIf}"`).test(shared.stdout)) problems.push(`the shared leak guard does not list the lab link ${state.clientIf}`);
  const blackholes = (await run('ip', ['-o', 'route', 'show', 'table', 'main', 'type', 'blackhole'], { allowFail: true })).stdout;
  for (const net of [state.subnet, SUPERNET]) {
    if (!new RegExp(`^blackhole ${net.replace(/\./g, '\\.')} .*metric 4242\\b`, 'm').test(blackholes)) problems.push(`the blackhole route for ${net} (metric 4242) is missing`);
  }
  return problems;
}

export interface UpOptions {
  log?: (line: string) => void;
  /** how long to wait for a run that holds the lab (default 0: refuse at once) */
  waitMs?: number;
}

export interface DownOptions extends UpOptions {
  /** tear the lab down even while a run holds it (the shared guard still stays while any run can send) */
  force?: boolean;
}

/** Brings the lab up; idempotent: a healthy lab is left as it is. */
export async function labUp(name = DEFAULT_LAB, opts: UpOptions = {}): Promise<LabState> {
  validateLabName(name);
  const log = opts.log ?? (() => {});
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, nftables, cgroups)');
  const existing = readLabState(name);
  if (existing && (await labHealthRepaired(existing, log))) {
    log(`lab ${name} is already up (${existing.targetAddress})`);
    return existing;
  }
  // rebuilding (or building) it: never under a run that holds the lab
  const lease = await acquireLabLease(name, '`blackout lab up`', opts.waitMs ?? 0, LAB_BUSY_HINT);
  try {
    return await labUpLeased(name, opts, log);
  } finally {
    lease.release();
  }
}

/**
 * Healthy, or made healthy again when only its shared safety net is missing
 * or of an older form (the shared guard, its entry for this lab, a blackhole
 * route): that is put back without touching the lab, under the alloc lock.
 */
async function labHealthRepaired(state: LabState, log: (line: string) => void): Promise<boolean> {
  const health = await labHealth(state);
  if (health.up) return true;
  const shared = await sharedGuardProblems(state);
  if (shared.length === 0 || shared.length !== health.problems.length) return false;
  log(`lab ${state.name}: ${shared.join('; ')}: putting it back`);
  await withAllocLock(async () => {
    await run('ip', ['route', 'replace', 'blackhole', state.subnet, 'metric', '4242']);
    await installSupernetGuard([state.clientIf]);
  });
  return (await labHealth(state)).up;
}

async function labUpLeased(name: string, opts: UpOptions, log: (line: string) => void): Promise<LabState> {
  const existing = readLabState(name);
  if (existing) {
    if (await labHealthRepaired(existing, log)) {
      log(`lab ${name} is already up (${existing.targetAddress})`);
      return existing;
    }
    const health = await labHealth(existing);
    log(`lab ${name} is half up (${health.problems.join('; ')}): tearing it down first`);
    await labDownLeased(name, opts);
  } else if ((await netnsList()).some((n) => n === `bo-${name}` || n === `bo-${name}-sw`)) {
    // a lab whose state file is gone (e.g. /run was cleaned): clear it by name
    await labDownLeased(name, opts);
  }
  // allocate + write the state under a cross-process lock: two `lab up` at once (parallel test
  // files) must never get the same index, or one's failed `up` tears down the other's guard and link
  const { t, state } = await withAllocLock(async () => {
    // the range must be ours to take: routes or addresses of the host in it are refused, with the reason
    const conflicts = await rangeConflicts(SUPERNET, labClientIfs());
    if (conflicts.length) throw new Error(`the lab range ${SUPERNET} is in use on this machine, so the lab will not take it: ${conflicts.join('; ')}`);
    const index = await allocateIndex(name);
    // the shared guard first, with this lab's link already exempted by its exact name
    await installSupernetGuard([topology(name, index).clientIf]);
    // the freezer this machine has (cgroup v1 freezer, or v2's cgroup.freeze), decided now
    const t = topology(name, index, detectFreezer().root);
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
    await labDownLeased(name, opts).catch(() => {});
    throw e;
  }
}

const LAB_BUSY_HINT = ': wait for that run to finish (or stop it with Ctrl-C), or give `--wait SECONDS`';

export const SUPERNET = '10.213.0.0/16';
export const SUPERNET_GUARD = 'blackout_guard';

/**
 * The guard chains' priorities: late in postrouting, after any other chain (a NFQUEUE, a mangle that
 * rerouted), when the outgoing interface is final. A lab's own guard goes first (its counter is its
 * own lab's), the shared one last.
 */
const LAB_GUARD_PRIORITY = 999;
const GUARD_PRIORITY = 1000;

/**
 * The second line of defence, shared by every lab: a blackhole route for the
 * whole lab range and a guard that drops (and counts) any packet for it
 * leaving by an interface that is not a lab client link (named exactly, from
 * the `lab_ifs` set that `lab up`/`lab down` keep) or lo. It hooks
 * postrouting, where the packet's final interface is known (a reroute after
 * the output hook cannot escape it), and covers forwarded packets there too.
 * It does not depend on any one lab's state: if a lab's own link, route or
 * guard vanish (a crashed teardown, a foreign tool, a forced `lab down`), its
 * traffic still cannot leave the machine. Installed before the first lab,
 * removed only when no lab exists and no blackout process holds the send
 * lease (./lease.ts).
 */
export function supernetGuardRuleset(labIfs: readonly string[], opts: { replace?: boolean; table?: string } = {}): string {
  const table = opts.table ?? SUPERNET_GUARD;
  const elements = labIfs.length ? `\n    elements = { ${labIfs.map((i) => `"${i}"`).join(', ')} }` : '';
  return `${opts.replace ? `delete table inet ${table}\n` : ''}table inet ${table} {
  comment "${OWNER_MARK}*"
  counter leak { }
  set lab_ifs {
    type ifname;${elements}
  }
  chain guard_postrouting {
    type filter hook postrouting priority ${GUARD_PRIORITY}; policy accept;
    ip daddr ${SUPERNET} oifname != "lo" oifname != @lab_ifs counter name "leak" drop
  }
}
`;
}

function isCurrentSupernetGuard(listing: string): boolean {
  return listing.includes('set lab_ifs') && /hook postrouting/.test(listing) && !/hook output/.test(listing) && !listing.includes('"bo*"');
}

/** the client links of every lab this machine has (their state files) */
function labClientIfs(): string[] {
  return listLabs().flatMap((n) => {
    const st = readLabState(n);
    return st ? [st.clientIf] : [];
  });
}

/** Installs (or upgrades, in one transaction: no gap) the shared guard, exempting `addIfs` and every lab's link. Under the alloc lock. */
async function installSupernetGuard(addIfs: string[] = []): Promise<void> {
  await run('ip', ['route', 'replace', 'blackhole', SUPERNET, 'metric', '4242']);
  const ifs = [...new Set([...labClientIfs(), ...addIfs])];
  const cur = await run('nft', ['list', 'table', 'inet', SUPERNET_GUARD], { allowFail: true });
  if (cur.code === 0 && !cur.stdout.includes(`comment "${OWNER_MARK}`))
    throw new Error(`an nft table inet ${SUPERNET_GUARD} exists that blackout did not make: not touching it, and not bringing a lab up without our guard`);
  if (cur.code === 0 && isCurrentSupernetGuard(cur.stdout)) {
    if (ifs.length) await run('nft', ['-f', '-'], { input: `add element inet ${SUPERNET_GUARD} lab_ifs { ${ifs.map((i) => `"${i}"`).join(', ')} }\n` });
    return;
  }
  await run('nft', ['-f', '-'], { input: supernetGuardRuleset(ifs, { replace: cur.code === 0 }) });
}

/** Takes a lab's link out of the shared guard's exemptions (after the link itself is gone). */
async function unexemptLabIf(clientIf: string): Promise<void> {
  await withAllocLock(async () => {
    // another lab may have been given the same index meanwhile: only when no lab uses that link
    if (labClientIfs().includes(clientIf) && existsSync(`/sys/class/net/${clientIf}`)) return;
    await run('nft', ['-f', '-'], { input: `delete element inet ${SUPERNET_GUARD} lab_ifs { "${clientIf}" }\n`, allowFail: true });
  });
}

/**
 * Removes the shared guard when it is not needed any more: no lab is left
 * AND the machine-wide send lease can be taken exclusively, i.e. no run, and
 * no process a run spawned (a ping that outlived a kill -9 of its harness),
 * can still send to the lab range. Otherwise it stays, and says why.
 */
async function removeSupernetGuardIfLast(log: (line: string) => void): Promise<void> {
  await withAllocLock(async () => {
    const send = trySendLeaseExclusive();
    if (!send) {
      const pids = sendLeaseHolders();
      log(
        `the shared guard (blackhole ${SUPERNET}, nft table inet ${SUPERNET_GUARD}) stays: ${pids.length ? `process(es) ${pids.join(', ')} of a blackout run` : 'a blackout run'} may still send to the lab range; a \`blackout lab down\` after they ended removes it with the last lab`,
      );
      return;
    }
    if (listLabs().length > 0 || (await netnsList()).some((n) => n.startsWith('bo-'))) {
      send.release();
      return;
    }
    try {
      if (await ownedTable('inet', SUPERNET_GUARD, null, '*')) await run('nft', ['delete', 'table', 'inet', SUPERNET_GUARD], { allowFail: true });
      await run('ip', ['route', 'del', 'blackhole', SUPERNET, 'metric', '4242'], { allowFail: true });
    } finally {
      send.release();
    }
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
  chain guard_postrouting {
    type filter hook postrouting priority ${LAB_GUARD_PRIORITY}; policy accept;
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
  // a plain switch: where br_netfilter is loaded (Docker loads it) every bridged frame would also go through
  // the IP firewall hooks, in the sender's own system call; the cut is a netdev ingress rule and needs none
  // of it (-e: the keys exist only with the module; the setting is this namespace's own)
  await runIn(t.switchNs, 'sysctl', ['-e', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0']);
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
  const add = await run('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/bin/sh', '--password', '*', LAB_USER], { allowFail: true });
  if (add.code === 0) return;
  // two labs coming up at once on a fresh machine both find no user and both add it: the loser is fine
  if ((await run('id', ['-u', LAB_USER], { allowFail: true })).code === 0) return;
  throw new Error(`useradd ${LAB_USER}: exit ${add.code}: ${add.stderr.trim()}`);
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

/**
 * Tears the lab down completely. Only touches what carries this lab's
 * ownership marker or names. Never under a run: it takes the lab's lease,
 * waiting up to `waitMs` for a run that holds it, else refuses
 * (LeaseBusyError naming the run); `force` tears it down anyway, and the
 * shared guard then stays as long as that run (or anything it spawned) lives.
 */
export async function labDown(name = DEFAULT_LAB, opts: DownOptions = {}): Promise<string[]> {
  validateLabName(name);
  const log = opts.log ?? (() => {});
  let lease: Lease | null = null;
  try {
    lease = await acquireLabLease(name, '`blackout lab down`', opts.waitMs ?? 0, `${LAB_BUSY_HINT}; \`--force\` tears it down under the run (the shared guard stays while the run lives)`);
  } catch (e) {
    if (!opts.force) throw e;
    log(`--force: ${(e as Error).message.split(LAB_BUSY_HINT)[0]}; tearing it down under that run`);
  }
  try {
    return await labDownLeased(name, opts);
  } finally {
    lease?.release();
  }
}

async function labDownLeased(name: string, opts: UpOptions): Promise<string[]> {
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
  // the shared guard no longer exempts its link (it is gone; a later lab may get that name again)
  if (state) await unexemptLabIf(state.clientIf);
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
  await removeSupernetGuardIfLast(log);
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
