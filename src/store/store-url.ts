/**
 * The results store's URL: checked up front (a bad one is bad input), its
 * password never shown. Apart from db.ts so the commands that only check a URL
 * do not load the PostgreSQL client.
 */

export class StoreError extends Error {}

/** Validates a store URL (field named in the error); returns it unchanged. */
export function checkStoreUrl(url: string | undefined, field = '--store'): string {
  if (!url) throw new StoreError(`${field}: a results store is needed: postgres://user@host:port/db (or $BLACKOUT_STORE)`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreError(`${field}: not a URL (expected postgres://user@host:port/db)`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new StoreError(`${field}: scheme "${u.protocol.replace(/:$/, '')}" is not postgres`);
  if (!u.hostname && !u.searchParams.get('host')) throw new StoreError(`${field}: no host`);
  return url;
}

/** The URL as it may be shown: without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(store URL)';
  }
}
