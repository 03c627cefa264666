/**
 * PostgreSQL from Debian's postgresql package: a private cluster in the lab
 * folder, listening on the target address only, scram-sha-256 for network
 * clients. The password is generated per lab and kept in a root-only file.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { run } from '../../transport/exec.ts';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';

function pgBin(): string {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort() : [];
  const v = versions.at(-1);
  if (!v) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (package postgresql)');
  return `/usr/lib/postgresql/${v}/bin`;
}

export const postgres: LabService = {
  name: 'postgres',
  packages: ['postgresql'],
  async start(lab) {
    const bin = pgBin();
    const data = `${lab.dir}/pgdata`;
    const sock = `${lab.dir}/pgsock`;
    const passwordFile = `${lab.dir}/secrets/pg-password`;
    const password = randomBytes(18).toString('base64url');
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
    const { uid, gid } = await ids('postgres');
    for (const d of [data, sock]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d, { mode: 0o700 });
      chownSync(d, uid, gid);
    }
    await run('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', `${bin}/initdb`, '-D', data, '-A', 'trust', '--auth-host=scram-sha-256', '-U', 'postgres', '--no-sync'], {
      timeoutMs: 60_000,
    });
    writeFileSync(`${data}/pg_hba.conf`, `local all all trust\nhost all all ${lab.subnet} scram-sha-256\n`);
    chownSync(`${data}/pg_hba.conf`, uid, gid);
    chmodSync(sock, 0o755);
    startInTarget(
      lab,
      'postgres',
      `${bin}/postgres`,
      [
        '-D',
        data,
        '-c',
        `listen_addresses=${lab.targetAddress}`,
        '-c',
        'port=5432',
        '-c',
        `unix_socket_directories=${sock}`,
        '-c',
        'fsync=off',
        '-c',
        'max_connections=300',
        '-c',
        'shared_buffers=32MB',
      ],
      { user: 'postgres' },
    );
    await waitForPort(lab.targetAddress, 5432, 30_000);
    // the password travels on stdin, never on a command line (ps would show it)
    const sql = `CREATE ROLE blackout LOGIN PASSWORD '${password}';\nCREATE DATABASE blackout OWNER blackout;\n`;
    // the port answers before the server accepts sessions ("the database system is starting up"),
    // which on a loaded machine (parallel test files) lasts a while: retry for up to 30 s
    for (let attempt = 0; ; attempt++) {
      const r = await run(
        'ip',
        [
          'netns',
          'exec',
          lab.targetNs,
          'setpriv',
          '--reuid=postgres',
          '--regid=postgres',
          '--init-groups',
          `${bin}/psql`,
          '-q',
          '-h',
          sock,
          '-U',
          'postgres',
          '-d',
          'postgres',
          '-v',
          'ON_ERROR_STOP=1',
          '-f',
          '-',
        ],
        { input: sql, allowFail: true },
      );
      if (r.code === 0) break;
      if (!/starting up/.test(r.stderr) || attempt >= 150) throw new Error(`psql (creating the lab role and database): exit ${r.code}: ${r.stderr.trim()}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    return { port: 5432, database: 'blackout', user: 'blackout', passwordFile };
  },
};

async function ids(user: string): Promise<{ uid: number; gid: number }> {
  const [u, g] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}
