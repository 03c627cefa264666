/** Connections to the results store: the URL checked up front, its password never shown. */
import pg from 'pg';
import { migrate } from './migrations.ts';

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

const migrated = new Set<string>();

/**
 * A connected client with the schema migrated (once per process per URL).
 * Errors on an idle connection are routed to onError instead of crashing the process.
 */
export async function connectStore(url: string, opts: { onError?: (e: Error) => void; timeoutMs?: number } = {}): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: opts.timeoutMs ?? 5000, application_name: 'blackout' });
  client.on('error', (e) => opts.onError?.(e));
  try {
    await client.connect();
    if (!migrated.has(url)) {
      await migrate(client);
      migrated.add(url);
    }
  } catch (e) {
    await client.end().catch(() => {});
    throw new StoreError(`results store ${redactUrl(url)}: ${(e as Error).message}`);
  }
  return client;
}
