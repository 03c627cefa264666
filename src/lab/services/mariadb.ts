/**
 * MariaDB from Debian's mariadb-server package, configured as it comes (the
 * Debian /etc/mysql files are read as usual) apart from what lets several labs
 * run side by side: its own datadir, socket, PID file and tmpdir in the lab folder,
 * listening on the target address only, port 3306. A lab user `blackout` with
 * a generated password (a root-only file) owns the database `blackout`; root
 * keeps Debian's unix_socket login, so a test reaches the server through the
 * socket even while the cable is pulled.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { run } from '../../transport/exec.ts';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort, waitForUnixSocket } from '../wait.ts';

export const MARIADB_PORT = 3306;

export const mariadb: LabService = {
  name: 'mariadb',
  packages: ['mariadb-server', 'mariadb-client'],
  async start(lab) {
    for (const bin of ['/usr/sbin/mariadbd', '/usr/bin/mariadb-install-db', '/usr/bin/mariadb']) {
      if (!existsSync(bin)) throw new Error(`mariadb: ${bin} is missing: run \`npm run setup\` (installs mariadb-server)`);
    }
    const dir = `${lab.dir}/mariadb`;
    const data = `${dir}/data`;
    const socket = `${dir}/mysqld.sock`;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(data, { recursive: true, mode: 0o750 });
    const [u, g] = await Promise.all([run('id', ['-u', 'mysql']), run('id', ['-g', 'mysql'])]);
    const uid = Number(u.stdout.trim());
    const gid = Number(g.stdout.trim());
    chownSync(dir, uid, gid);
    chownSync(data, uid, gid);
    // its temporary files in the lab folder too: a shared /tmp that something cleans meanwhile aborts the bootstrap
    const tmp = `${dir}/tmp`;
    mkdirSync(tmp, { mode: 0o700 });
    chownSync(tmp, uid, gid);
    await run('mariadb-install-db', ['--user=mysql', `--datadir=${data}`, `--tmpdir=${tmp}`, '--skip-test-db', '--auth-root-authentication-method=socket'], { timeoutMs: 120_000 });
    startInTarget(
      lab,
      'mariadb',
      '/usr/sbin/mariadbd',
      [`--datadir=${data}`, `--tmpdir=${tmp}`, `--socket=${socket}`, `--pid-file=${dir}/mysqld.pid`, `--bind-address=${lab.targetAddress}`, `--port=${MARIADB_PORT}`],
      { user: 'mysql' },
    );
    await waitForPort(lab.targetAddress, MARIADB_PORT, 60_000);
    // the socket file comes after the port (the client below uses it)
    await waitForUnixSocket(socket, 30_000);

    const password = randomBytes(18).toString('base64url');
    const passwordFile = `${lab.dir}/secrets/mariadb-password`;
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    // the password travels on stdin, never on a command line
    const sql = ['CREATE DATABASE blackout;', `CREATE USER 'blackout'@'%' IDENTIFIED BY '${password}';`, "GRANT ALL PRIVILEGES ON blackout.* TO 'blackout'@'%';", ''].join('\n');
    await run('mariadb', [`--socket=${socket}`, '--user=root', '--batch'], { input: sql, timeoutMs: 30_000 });
    return { port: MARIADB_PORT, database: 'blackout', user: 'blackout', passwordFile, socket };
  },
};
