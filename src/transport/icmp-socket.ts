/**
 * ICMP echo on a paced thread of its own (icmp-thread.mjs): the icmp probe's
 * `client: socket`. The thread sends on a fixed grid of the monotonic clock
 * whether or not replies come back (faster while they are missing, when
 * silentPeriodMs says so), and it stamps every send and reply on the run
 * clock's source. The
 * main thread only receives batches of replies (every 20 ms), so a busy event
 * loop delays their delivery but never their sending or their stamps.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Worker } from 'node:worker_threads';

export interface EchoReply {
  /** the request's sequence number (32 bits, from 1, never wraps in a run) */
  seq: number;
  /** run-clock ms right before the request left */
  sentAt: number;
  /** run-clock ms right after the reply was read */
  receivedAt: number;
  /** ms from the previous request's send to this one's (NaN: not known) */
  stepMs: number;
}

export interface PingerOptions {
  /** host name or address */
  address: string;
  periodMs: number;
  /** the send period while replies are missing (at most periodMs; equal: one pace throughout) */
  silentPeriodMs?: number;
  /** the run clock's origin on CLOCK_MONOTONIC */
  originNs: bigint;
  /** SCHED_FIFO for the sending thread (root only; otherwise ignored) */
  realtime: boolean;
  onReplies(replies: EchoReply[]): void;
  /** a local error while sending (no route, …): not silence */
  onError(t: number, message: string): void;
  /** the thread ended on its own (cannot open a socket, or crashed) */
  onFatal(message: string): void;
}

/** neither a raw nor a datagram ICMP socket could be opened: the rights are missing, not the target */
export class IcmpSocketDenied extends Error {}

export interface Pinger {
  /** resolves when the socket is open and the first request is on its way */
  readonly ready: Promise<{ raw: boolean }>;
  /** stops sending, closes the socket; resolves with the number of requests sent */
  stop(): Promise<number>;
}

/** the address's family and bytes (a host name is looked up first) */
export async function resolveAddress(address: string): Promise<{ family: 4 | 6; bytes: number[] }> {
  const ip = isIP(address) ? { address, family: isIP(address) } : await lookup(address);
  if (ip.family === 4) return { family: 4, bytes: ip.address.split('.').map(Number) };
  // a zone ("%eth0") is dropped; a dotted IPv4 tail (::ffff:192.0.2.1) is two groups
  let text = ip.address.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) text = text.slice(0, v4.index) + [((+v4[1]! << 8) | +v4[2]!).toString(16), ((+v4[3]! << 8) | +v4[4]!).toString(16)].join(':');
  // expand "::" so every group is there, then two bytes per group
  const [head = '', tail = ''] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = text.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return { family: 6, bytes: groups.flatMap((g) => [(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff]) };
}

export async function startPinger(o: PingerOptions): Promise<Pinger> {
  const { family, bytes } = await resolveAddress(o.address);
  const stopBuffer = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./icmp-thread.mjs', import.meta.url), {
    workerData: {
      family,
      address: { bytes },
      periodNs: BigInt(Math.round(o.periodMs * 1e6)),
      silentPeriodNs: BigInt(Math.round((o.silentPeriodMs ?? o.periodMs) * 1e6)),
      originNs: o.originNs,
      realtime: o.realtime,
      stop: stopBuffer,
    },
  });
  let sent = 0;
  let ended = false;
  let markReady: (v: { raw: boolean }) => void = () => {};
  let failReady: (e: Error) => void = () => {};
  const ready = new Promise<{ raw: boolean }>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('message', (m: { what: string; data?: Float64Array; raw?: boolean; t?: number; message?: string; sent?: number; denied?: boolean }) => {
    if (m.what === 'replies' && m.data) {
      const replies: EchoReply[] = [];
      for (let i = 0; i + 3 < m.data.length; i += 4) replies.push({ seq: m.data[i]!, sentAt: m.data[i + 1]!, receivedAt: m.data[i + 2]!, stepMs: m.data[i + 3]! });
      o.onReplies(replies);
    } else if (m.what === 'ready') markReady({ raw: m.raw === true });
    else if (m.what === 'error') o.onError(m.t!, m.message!);
    else if (m.what === 'stopped') sent = m.sent ?? 0;
    else if (m.what === 'fatal') {
      ended = true;
      failReady(m.denied ? new IcmpSocketDenied(m.message) : new Error(m.message));
      o.onFatal(m.message!);
    }
  });
  worker.on('error', (e) => {
    ended = true;
    failReady(e);
    o.onFatal(e.message);
  });
  worker.on('exit', () => {
    if (!ended) failReady(new Error('the ICMP thread ended before it was ready'));
    ended = true;
  });
  return {
    ready,
    async stop() {
      Atomics.store(new Int32Array(stopBuffer), 0, 1);
      // the thread looks at the flag at least every 50 ms; terminate() is the backstop
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(timer);
      return sent;
    },
  };
}
