/**
 * icmp: continuous echo requests, with one of two clients.
 *
 * `client: socket` (the default) sends from a thread of its own
 * (transport/icmp-socket.ts) on a fixed grid of the monotonic clock, replies
 * or not, and stamps sends and replies on the run clock's source. While
 * replies are missing it sends every `silentInterval` (1 ms) instead: the
 * target cannot receive them, and the first answered one places the restore
 * to within that step, where at a 10 ms interval it would be known only to
 * within the interval. At 10 ms it costs a few percent of a core; at 1 ms a
 * sixth, with the harness's writing of ~900 events a second. It needs a raw
 * socket (root or CAP_NET_RAW) or an ICMP datagram socket
 * (net.ipv4.ping_group_range, open to every group on Debian 12 and Ubuntu);
 * without either, and unless `client: socket` was asked for, the probe says
 * so and runs ping instead.
 *
 * `client: ping` runs the system iputils `ping -D -O`: every reply carries
 * ping's wall-clock time as it printed it, mapped onto the run clock, and its
 * round trip, so the analysis knows when each answered request was sent and
 * brackets the outage by send times (the requests lost in between counted by
 * their sequence numbers). At HZ=250, `-i 0.01` really sends every 16 ms: the
 * analysis takes the effective interval from the replies themselves. Below a
 * 20 ms interval (10–19 ms run `-i 0.009`, see pingInterval) ping spins
 * between sends: about half a core, measured. And while a reply is missing
 * iputils sends only every ~10 ms, whatever `-i` says, so the restore edge is
 * known to ±5 ms at best.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { duration, probeBase } from '../core/schema-util.ts';
import { atMost } from '../core/clock.ts';
import type { Probe, ProbeContext, ProbeDefinition } from '../core/probe.ts';
import { childEnv } from '../transport/child-env.ts';
import { IcmpSocketDenied, startPinger, type Pinger } from '../transport/icmp-socket.ts';

const schema = z.strictObject({
  ...probeBase('icmp', { interval: 10, tolerance: 500 }),
  /**
   * Run the sender at real-time priority (the socket thread through
   * sched_setscheduler, ping through `chrt -f 10`; root only), so its sends
   * keep their period on a loaded machine: each send is a sleep and one
   * syscall, and at 1 ms a few milliseconds' wait for a CPU is several lost
   * sends. Default: on below a 10 ms interval.
   */
  realtime: z
    .boolean()
    .optional()
    .describe('run the sender (socket thread or ping) at real-time priority (root only) so its sends keep their period on a loaded machine; default: on below a 10 ms interval'),
  /**
   * Who sends the echo requests: blackout's own paced thread on an ICMP
   * socket (the default; it keeps its period while replies are missing, and
   * goes faster then), or the system `ping` (iputils).
   */
  client: z
    .enum(['ping', 'socket'])
    .optional()
    .describe(
      "who sends: 'socket' (the default: blackout's own paced sender, which keeps its period and goes faster while replies are missing; root, CAP_NET_RAW or net.ipv4.ping_group_range, else ping is used) or 'ping' (system iputils ping)",
    ),
  /**
   * The socket sender's period while replies are missing: the precision of
   * the restore's edge. Equal to `interval`: one pace throughout, as fping.
   */
  silentInterval: duration({ min: 1, max: 3_600_000 })
    .optional()
    .describe(
      'client socket: how often to send while replies are missing, so the restore is known to within it (default 1 ms, or the interval if shorter; the interval itself keeps one pace throughout)',
    ),
});
export type IcmpConfig = z.infer<typeof schema>;

/**
 * The `-i` to give ping for a wanted period. iputils ping sleeps with a
 * millisecond poll from 10 ms up, which the kernel timer rounds up by 4–7 ms
 * (HZ=250: `-i 0.010` sends every 17 ms, `-i 0.020` every 24.6 ms), while
 * below 10 ms it is close (`-i 0.009`: 9.2 ms). Measured on this kind of
 * machine; the analysis uses the real spacing of the replies either way.
 */
export function pingInterval(wantedMs: number): number {
  if (wantedMs < 10) return wantedMs;
  if (wantedMs < 20) return 9;
  return wantedMs - 5;
}

const clientOf = (c: IcmpConfig): 'ping' | 'socket' => c.client ?? 'socket';
const silentOf = (c: IcmpConfig): number => Math.min(c.silentInterval ?? 1, c.interval);
const realtimeOf = (c: IcmpConfig): boolean => c.realtime ?? c.interval < 10;

const REPLY = /^\[(\d+\.\d+)\] \d+ bytes from [^:]+: icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms/;
const PROBLEM = /^\[(\d+\.\d+)\] (From .*)$/;

export const icmp: ProbeDefinition<IcmpConfig> = {
  kind: 'icmp',
  summary: 'continuous echo requests (system ping, or a paced sender down to 1 ms): the exact outage window',
  packages: ['iputils-ping'],
  schema,
  policy: (c) =>
    clientOf(c) === 'socket'
      ? {
          client: c.client === 'socket' ? 'socket (paced thread)' : 'socket (paced thread; iputils ping without ICMP socket rights)',
          intervalMs: c.interval,
          silentIntervalMs: silentOf(c),
          realtime: realtimeOf(c),
        }
      : { client: 'iputils ping -D -O', intervalMs: c.interval, pingArgIntervalMs: pingInterval(c.interval), realtime: realtimeOf(c) },
  facts: () => ({ session: false, deadlines: [], notes: ['ping keeps no session: it only measures the outage'], reconnect: false, sendTimes: true }),
  create(config, ctx) {
    if (clientOf(config) === 'ping') return pingClient(config, ctx);
    if (config.client === 'socket') return socketClient(config, ctx);
    return withFallback(
      socketClient(config, ctx),
      () => pingClient(config, ctx),
      (why) => ctx.emit({ type: 'probe-error', t: ctx.clock.now(), message: `using the system ping: ${why}`, fatal: false }),
    );
  },
};

/**
 * The default sender, or the fallback when the default cannot even start
 * (no ICMP socket rights, the only error the socket sender's open() can
 * give before a request is on its way): a probe whose open() tells which.
 * Any other failure (no reply within 3 s) is the target's, not the client's,
 * and stays an error.
 */
export function withFallback(primary: Probe, fallback: () => Probe, said: (why: string) => void): Probe {
  let used = primary;
  return {
    async open() {
      try {
        await primary.open();
      } catch (e) {
        if (!(e instanceof IcmpSocketDenied)) throw e;
        said(e.message);
        used = fallback();
        await used.open();
      }
    },
    close: () => used.close(),
  };
}

/** `client: ping`: iputils ping -D -O, its lines parsed as they come */
function pingClient(config: IcmpConfig, ctx: ProbeContext): Probe {
  let child: ChildProcess | null = null;
  let opened = false;
  return {
    open() {
      return new Promise((resolve, reject) => {
        const args = ['-D', '-O', '-n', '-i', (pingInterval(config.interval) / 1000).toFixed(4), '-W', '1', ctx.target.address];
        const rt = realtimeOf(config) && process.getuid?.() === 0;
        // chrt execs ping: the same PID, so close()'s SIGINT reaches ping itself
        child = rt ? spawn('chrt', ['-f', '10', 'ping', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() }) : spawn('ping', args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
        const timer = setTimeout(() => reject(new Error(`ping ${ctx.target.address}: no reply within 3 s`)), 3000);
        child.on('error', (e) => {
          clearTimeout(timer);
          reject(new Error(`ping: ${e.message}`));
        });
        let stderr = '';
        child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (code) => {
          clearTimeout(timer);
          if (!opened) reject(new Error(`ping exited (${code}): ${stderr.trim()}`));
          else if (!ctx.signal.aborted) ctx.emit({ type: 'session-lost', message: `ping exited (${code}) ${stderr.trim()}` });
        });
        createInterface({ input: child.stdout! }).on('line', (line) => {
          const m = REPLY.exec(line);
          if (m) {
            const t = ctx.clock.fromWallMs(Number(m[1]) * 1000);
            if (!opened) {
              opened = true;
              clearTimeout(timer);
              ctx.emit({ type: 'session-open', reconnect: false, t });
              resolve();
            }
            ctx.emit({ type: 'sample', t, seq: Number(m[2]), latencyMs: Number(m[3]) });
            return;
          }
          const p = PROBLEM.exec(line);
          // "From … Destination Host Unreachable": a local error, not silence (same-LAN pull after ARP expiry)
          if (p) ctx.emit({ type: 'probe-error', t: ctx.clock.fromWallMs(Number(p[1]) * 1000), message: p[2]!, fatal: false });
        });
      });
    },
    async close() {
      if (child?.pid && child.exitCode === null) {
        const exited = new Promise((r) => child!.once('exit', r));
        child.kill('SIGINT');
        await atMost(exited, 2000);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}

/** `client: socket`: the paced sender thread; replies reach the main thread in batches */
function socketClient(config: IcmpConfig, ctx: ProbeContext): Probe {
  let pinger: Pinger | null = null;
  return {
    async open() {
      let opened = false;
      let lastSeq: number | null = null;
      let firstReply: () => void = () => {};
      const first = new Promise<void>((resolve) => (firstReply = resolve));
      pinger = await startPinger({
        address: ctx.target.address,
        periodMs: config.interval,
        silentPeriodMs: silentOf(config),
        originNs: ctx.clock.originNs,
        realtime: realtimeOf(config),
        onReplies(replies) {
          for (const r of replies) {
            if (!opened) {
              opened = true;
              ctx.emit({ type: 'session-open', reconnect: false, t: r.receivedAt });
              firstReply();
            }
            // the step only after a lost request (where the analysis can use it): a steady log stays as small as it was
            const afterLoss = lastSeq !== null && r.seq !== lastSeq + 1 && Number.isFinite(r.stepMs);
            lastSeq = r.seq;
            ctx.emit({ type: 'sample', t: r.receivedAt, seq: r.seq, latencyMs: r.receivedAt - r.sentAt, ...(afterLoss ? { sendStepMs: Math.round(r.stepMs * 1e6) / 1e6 } : {}) });
          }
        },
        // "no route to host" and the like: a local error, not silence
        onError: (t, message) => ctx.emit({ type: 'probe-error', t, message, fatal: false }),
        onFatal(message) {
          if (opened && !ctx.signal.aborted) ctx.emit({ type: 'session-lost', message: `icmp sender: ${message}` });
        },
      });
      try {
        await pinger.ready;
        const ok = await atMost(
          first.then(() => true),
          3000,
        );
        if (ok !== true) throw new Error(`icmp ${ctx.target.address}: no reply within 3 s`);
      } catch (e) {
        await pinger.stop();
        pinger = null;
        throw e;
      }
    },
    async close() {
      await pinger?.stop();
    },
  };
}
