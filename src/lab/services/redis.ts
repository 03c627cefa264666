/**
 * Redis from Debian's redis-server package, with its compiled-in defaults
 * (no idle timeout, tcp-keepalive 300 s) apart from what a lab needs: bound
 * to the target address, no persistence (no RDB snapshots, no AOF), its
 * working folder in the lab folder, and protected mode off (no config file, no
 * password: the lab's subnet is reachable from the harness only). The tcp probe's `exchange` mode
 * talks to it (PING → +PONG).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';

export const REDIS_PORT = 6379;

export const redis: LabService = {
  name: 'redis',
  packages: ['redis-server'],
  async start(lab) {
    if (!existsSync('/usr/bin/redis-server')) throw new Error('redis: /usr/bin/redis-server is missing: run `npm run setup` (installs redis-server)');
    const dir = `${lab.dir}/redis`;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    startInTarget(lab, 'redis', '/usr/bin/redis-server', [
      '--bind',
      lab.targetAddress,
      '--port',
      String(REDIS_PORT),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
      '--logfile',
      '',
      // no password, so protected mode would answer every client from the lab subnet with -DENIED;
      // the lab subnet is reachable from this machine only (namespaces, guards)
      '--protected-mode',
      'no',
    ]);
    await waitForPort(lab.targetAddress, REDIS_PORT, 30_000);
    return { port: REDIS_PORT };
  },
};
