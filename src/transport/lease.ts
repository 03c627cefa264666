/**
 * Leases: `flock(2)` locks on small files under /run/blackout/leases. A
 * lease is held by an open file description, so the kernel drops it when the
 * last process holding that description exits: a lease never outlives its
 * holder (kill -9 included) and is never broken by age.
 *
 *  - exclusive leases: one run per target (and per lab); `lab down` takes the
 *    lab's lease too, so it never tears a lab down under a run;
 *  - a shared lease can be made inheritable (FD_CLOEXEC cleared), so the
 *    child processes a run spawns (ping, smbclient, xfreerdp…) hold it as long
 *    as they live, even after the harness itself died.
 *
 * Node has no flock and opens every fd O_CLOEXEC: both go through libc via
 * koffi (libc.ts). Waiting is a non-blocking poll, so the
 * event loop never blocks on a lock.
 */
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, writeSync, ftruncateSync, constants } from 'node:fs';
import { createHash } from 'node:crypto';
import { libc } from './libc.ts';
import { sleep } from '../core/clock.ts';
import { pidAlive } from './exec.ts';

export const LEASE_DIR = '/run/blackout/leases';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const EWOULDBLOCK = 11;
const EINTR = 4;

export type LeaseMode = 'shared' | 'exclusive';

/** What a holder of an exclusive lease writes into its file, so a refused caller can name it. */
export interface HolderInfo {
  pid: number;
  what: string;
  sinceWallMs: number;
}

export class LeaseBusyError extends Error {
  constructor(
    message: string,
    readonly holder: HolderInfo | null,
  ) {
    super(message);
  }
}

export class Lease {
  private open = true;
  constructor(
    readonly path: string,
    readonly fd: number,
    readonly mode: LeaseMode,
  ) {}

  get held(): boolean {
    return this.open;
  }

  /**
   * Lets child processes spawned from now on inherit this lease (clears
   * FD_CLOEXEC): they hold it as long as they keep the fd, i.e. as long as
   * they live, whatever happens to this process.
   */
  inheritable(on = true): this {
    setCloexec(this.fd, !on);
    return this;
  }

  /**
   * Closes our descriptor. Deliberately no LOCK_UN: that would drop the lock
   * for children that inherited the same description and still run.
   */
  release(): void {
    if (!this.open) return;
    this.open = false;
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

function setCloexec(fd: number, on: boolean): void {
  const flags = libc().fcntl(fd, F_GETFD);
  if (flags < 0) throw new Error(`fcntl(F_GETFD) on fd ${fd} failed (errno ${libc().errno()})`);
  const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (libc().fcntl(fd, F_SETFD, 'int', next) < 0) throw new Error(`fcntl(F_SETFD) on fd ${fd} failed (errno ${libc().errno()})`);
}

function openLeaseFile(path: string): number {
  const dir = path.slice(0, path.lastIndexOf('/'));
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch {
    /* a non-root user cannot create it: opening read-only below may still work */
  }
  try {
    // world-readable: a non-root process can still take a lease on a read-only descriptor
    return openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
    return openSync(path, constants.O_RDONLY);
  }
}

/** One attempt; null when someone else holds a conflicting lease. */
export function tryLease(path: string, mode: LeaseMode): Lease | null {
  const fd = openLeaseFile(path);
  for (;;) {
    const rc = libc().flock(fd, (mode === 'shared' ? LOCK_SH : LOCK_EX) | LOCK_NB);
    if (rc === 0) return new Lease(path, fd, mode);
    const err = libc().errno();
    if (err === EINTR) continue;
    closeSync(fd);
    if (err === EWOULDBLOCK) return null;
    throw new Error(`flock ${path}: errno ${err}`);
  }
}

/** Polls for the lease until `waitMs` passed (0: one attempt); null when still busy. */
export async function acquireLease(path: string, mode: LeaseMode, waitMs = 0, signal?: AbortSignal): Promise<Lease | null> {
  const until = Date.now() + Math.max(0, waitMs);
  for (;;) {
    const lease = tryLease(path, mode);
    if (lease) return lease;
    if (Date.now() >= until || signal?.aborted) return null;
    await sleep(Math.min(100, Math.max(1, until - Date.now())));
  }
}

/** Records who holds an exclusive lease (best effort: a read-only descriptor cannot). */
export function writeHolder(lease: Lease, what: string): void {
  const info: HolderInfo = { pid: process.pid, what, sinceWallMs: Date.now() };
  try {
    ftruncateSync(lease.fd, 0);
    writeSync(lease.fd, JSON.stringify(info), 0);
  } catch {
    /* read-only */
  }
}

export function readHolder(path: string): HolderInfo | null {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as HolderInfo;
    return typeof info.pid === 'number' ? info : null;
  } catch {
    return null;
  }
}

/** "run PID 123 (suite "x", out dir /y) since 14:02:11 UTC", for a refusal message. */
export function describeHolder(path: string): { text: string; holder: HolderInfo | null } {
  const h = readHolder(path);
  const pids = leaseHolderPids(path).filter((p) => p !== process.pid);
  if (h && pidAlive(h.pid) && (pids.length === 0 || pids.includes(h.pid))) {
    const since = new Date(h.sinceWallMs).toISOString().slice(11, 19);
    return { text: `PID ${h.pid} (${h.what}, since ${since} UTC)`, holder: h };
  }
  return { text: pids.length ? `PID ${pids.join(', ')}` : 'another process', holder: h };
}

/** The PIDs that have the lease file open (the kernel's view: every process that may hold the lease). */
export function leaseHolderPids(path: string): number[] {
  const pids: number[] = [];
  let procs: string[];
  try {
    procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return pids;
  }
  for (const p of procs) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${p}/fd/${fd}`) === path) {
          pids.push(Number(p));
          break;
        }
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return pids;
}

/** This process's descriptors on `path` (our own leases and any a parent left us). */
function ownFdsOn(path: string): number[] {
  const out: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) out.push(Number(fd));
    } catch {
      /* the directory's own fd, closed meanwhile */
    }
  }
  return out;
}

/**
 * Runs `fn` (a synchronous spawn of a long-lived process: a lab server, a VM,
 * a detached watchdog) with every descriptor on `path` marked close-on-exec,
 * so that process does not inherit the lease and keep it forever. Our own
 * inheritable leases are made inheritable again afterwards; a descriptor
 * this process merely inherited stays close-on-exec.
 */
export function withoutInheriting<T>(path: string, keep: readonly Lease[], fn: () => T): T {
  let fds: number[] = [];
  try {
    fds = ownFdsOn(path);
  } catch {
    /* no /proc: nothing to hide */
  }
  for (const fd of fds) setCloexec(fd, true);
  try {
    return fn();
  } finally {
    for (const l of keep) if (l.held && fds.includes(l.fd)) setCloexec(l.fd, false);
  }
}

/** The lease file of one target (a real host, by its name as the suite gives it). */
export function targetLeasePath(host: string): string {
  const h = host.trim().toLowerCase();
  const safe = h.replace(/[^a-z0-9.-]/g, '_').slice(0, 60);
  return `${leaseDir()}/target-${safe}-${createHash('sha256').update(h).digest('hex').slice(0, 12)}.lock`;
}

/** /run/blackout/leases as root; a user's own runtime folder otherwise (real targets need no root). */
export function leaseDir(): string {
  if (process.getuid?.() === 0) return LEASE_DIR;
  return `${process.env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`}/blackout-leases`;
}
