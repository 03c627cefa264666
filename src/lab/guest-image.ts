/**
 * The lab guest's image: built by scripts/build-guest.sh from Debian packages
 * (kernel, busybox-static, dropbear, sftp-server), cached under
 * /var/cache/blackout/guest/<key>. This module only runs the script (which
 * returns at once when the cache is there) and reads its manifest.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run } from '../transport/exec.ts';

export interface GuestImage {
  /** cache key: hash of the build script, kernel version and package versions */
  key: string;
  kernelVersion: string;
  kernel: string;
  initramfs: string;
  /** the guest user with key login (console and SFTP probes) */
  user: string;
  /** the client private key file for `user` (a path: never the key itself in events) */
  privateKeyFile: string;
  /** SHA256 fingerprint of the guest's SSH host key, "SHA256:…" */
  hostKey: string;
  hostKeyFile: string;
  minMemoryMB: number;
  builtAt: string;
}

const script = fileURLToPath(new URL('../../scripts/build-guest.sh', import.meta.url));

/** Returns the cached guest image, building it first when it is missing. */
export async function ensureGuestImage(opts: { force?: boolean } = {}): Promise<GuestImage> {
  // a build takes a few seconds; the lock inside the script may wait for a parallel build
  const r = await run('bash', [script, ...(opts.force ? ['--force'] : [])], { timeoutMs: 600_000 });
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  if (!dir.startsWith('/')) throw new Error(`build-guest.sh printed no guest directory: ${r.stderr.trim()}`);
  return JSON.parse(readFileSync(`${dir}/guest.json`, 'utf8')) as GuestImage;
}
