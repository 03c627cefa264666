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

export { sendLeaseHolders, trySendLeaseExclusive, spawnWithoutSendLease, holdSendLease, releaseSendLease, SEND_LEASE };
import { sendLeaseHolders, trySendLeaseExclusive, spawnWithoutSendLease, holdSendLease, releaseSendLease, SEND_LEASE } from '../transport/send-lease.ts';
import { LEASE_DIR, Lease, LeaseBusyError, acquireLease, describeHolder, writeHolder } from '../transport/lease.ts';

export function labLeasePath(name: string): string {
  return `${LEASE_DIR}/lab-${name}.lock`;
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
