/**
 * The lab's leases (flock, see ../lease.ts):
 *
 *  - lab-<name>.lock, exclusive: held by the one run using that lab, and by
 *    `lab up`/`lab down` while they rebuild or tear it down. `lab down` never
 *    tears a lab down under a run (it waits, bounded, or refuses naming the
 *    run; `--force` aside). It dies with the run, kill -9 included.
 *  - send.lock, machine-wide, shared: held by every run and inherited by the
 *    processes it spawns (ping, smbclient, xfreerdp, the browser…), so it is
 *    held as long as any of them could still send to the lab range, even
 *    after the harness died. The shared guard (the range's blackhole route
 *    and `inet blackout_guard`) is removed only when no lab exists and this
 *    lease can be taken exclusively.
 *  - long-lived processes started while a run holds send.lock (lab servers,
 *    a VM, detached watchdogs) are spawned through `spawnWithoutSendLease`, so
 *    they do not inherit it (else the guard could never be removed).
 */
import { validateLabName } from './topology.ts';
import { LEASE_DIR, Lease, LeaseBusyError, acquireLease, describeHolder, leaseHolderPids, tryLease, withoutInheriting, writeHolder } from '../transport/lease.ts';

export const SEND_LEASE = `${LEASE_DIR}/send.lock`;

export function labLeasePath(name: string): string {
  return `${LEASE_DIR}/lab-${name}.lock`;
}

/** this process's own inheritable send leases (one per run in progress) */
const sendLeases = new Set<Lease>();

/**
 * Takes the machine-wide send lease (shared, inheritable by child processes)
 * for a run. Waits while a `lab down` holds it exclusively (a moment: it only
 * removes the shared guard under it). Null when it cannot be had: a non-root
 * user where no lab was ever brought up (then there is no guard to keep).
 */
export async function holdSendLease(waitMs = 30_000): Promise<Lease | null> {
  let lease: Lease | null;
  try {
    lease = await acquireLease(SEND_LEASE, 'shared', waitMs);
  } catch (e) {
    if (process.getuid?.() !== 0) return null;
    throw e;
  }
  if (!lease) throw new Error(`the machine-wide send lease ${SEND_LEASE} is held exclusively for more than ${waitMs / 1000} s (a stuck \`blackout lab down\`?)`);
  lease.inheritable();
  sendLeases.add(lease);
  return lease;
}

export function releaseSendLease(lease: Lease | null): void {
  if (!lease) return;
  sendLeases.delete(lease);
  lease.release();
}

/** Spawns a long-lived process (synchronously, inside `fn`) without handing it the send lease. */
export function spawnWithoutSendLease<T>(fn: () => T): T {
  return withoutInheriting(SEND_LEASE, [...sendLeases], fn);
}

/** Who may still send to the lab range: PIDs holding the send lease (other than this process). */
export function sendLeaseHolders(): number[] {
  return leaseHolderPids(SEND_LEASE).filter((p) => p !== process.pid);
}

/** The send lease taken exclusively: nobody else can send to the lab range now. Null when someone holds it. */
export function trySendLeaseExclusive(): Lease | null {
  return tryLease(SEND_LEASE, 'exclusive');
}

/**
 * Takes lab `name`'s lease for `what` (a run, `lab up`, `lab down`), waiting
 * up to `waitMs`; throws LeaseBusyError naming the holder when it stays busy.
 */
export async function acquireLabLease(name: string, what: string, waitMs: number, hint = ''): Promise<Lease> {
  validateLabName(name);
  const path = labLeasePath(name);
  const lease = await acquireLease(path, 'exclusive', waitMs);
  if (!lease) {
    const h = describeHolder(path);
    const waited = waitMs > 0 ? ` (waited ${Math.round(waitMs / 1000)} s)` : '';
    throw new LeaseBusyError(`lab "${name}" is in use by ${h.text}${waited}${hint}`, h.holder);
  }
  writeHolder(lease, what);
  return lease;
}
