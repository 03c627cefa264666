/**
 * A TCP echo server on 127.0.0.1 in its own process, for end-to-end runs that
 * need no lab: a `command` injector freezes it with `kill -STOP` (a blackout
 * the echo probe really sees) and thaws it with `kill -CONT`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface LocalEcho {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const SERVER = `
const net = require('node:net');
const s = net.createServer((c) => { c.on('error', () => {}); c.pipe(c); });
s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));
`;

export async function startLocalEcho(): Promise<LocalEcho> {
  const child: ChildProcess = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`echo server exited (${code}) before listening`)));
  });
  return {
    port,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // a frozen server must be thawed to die of SIGTERM; SIGKILL needs neither
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}
