/**
 * The machine-wide send lease (flock, see lease.ts): held shared by every run
 * and inherited by the processes it spawns (ping, smbclient, xfreerdp, the
 * browser…), so it is held as long as any of them could still send to the
 * lab range, even after the harness died. The lab's shared guard is removed
 * only when this lease can be taken exclusively. Long-lived processes
 * (servers, VMs, detached watchdogs) are spawned through
 * `spawnWithoutSendLease`, so they never inherit it.
 */
import { LEASE_DIR, Lease, acquireLease, leaseHolderPids, tryLease, withoutInheriting } from './lease.ts';

export const SEND_LEASE = `${LEASE_DIR}/send.lock`;

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
