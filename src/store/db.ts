/** Connections to the results store (its URL checked and shown by store-url.ts). */
import pg from 'pg';
import { migrate } from './migrations.ts';
import { StoreError, redactUrl } from './store-url.ts';

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
