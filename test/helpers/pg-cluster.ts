/**
 * A private PostgreSQL cluster for the store/campaign tests and benchmarks:
 * initdb into a fresh temp folder (owned by the `postgres` user, as the lab's
 * own PostgreSQL is), listening on 127.0.0.1 on a free port only; stop()
 * removes it all. stopServer()/startServer() take the database away and bring
 * it back mid-test.
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

function pgBin(): string {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('PostgreSQL is not installed (/usr/lib/postgresql)');
  return `/usr/lib/postgresql/${versions[0]}/bin`;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function ids(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await exec('id', ['-u', user])).stdout.trim());
  const gid = Number((await exec('id', ['-g', user])).stdout.trim());
  return { uid, gid };
}

export interface PgCluster {
  url: string;
  port: number;
  dir: string;
  stopServer(mode?: 'fast' | 'immediate'): Promise<void>;
  startServer(): Promise<void>;
  /** stops the server and removes the cluster */
  destroy(): Promise<void>;
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBin();
  const dir = mkdtempSync(join(tmpdir(), 'blackout-pg-'));
  const data = join(dir, 'data');
  const asRoot = userInfo().uid === 0;
  const runAs = async (cmd: string, args: string[]) => {
    if (asRoot) return exec('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', cmd, ...args], { timeout: 120_000 });
    return exec(cmd, args, { timeout: 120_000 });
  };
  if (asRoot) {
    const { uid, gid } = await ids('postgres');
    chownSync(dir, uid, gid);
  }
  await runAs(`${bin}/initdb`, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  const startServer = async () => {
    await runAs(`${bin}/pg_ctl`, ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  };
  const stopServer = async (mode: 'fast' | 'immediate' = 'fast') => {
    await runAs(`${bin}/pg_ctl`, ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
  };
  await startServer();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    stopServer,
    startServer,
    destroy: async () => {
      await stopServer('immediate').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
