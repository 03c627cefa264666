// A worker thread that sends ICMP echo requests on a fixed grid of the
// monotonic clock and stamps every reply, through the socket calls (koffi FFI):
// the icmp probe's `client: socket`.
//
// Why not the system ping: iputils waits ~10 ms for a missing reply before it
// sends again, so during a cut a 1 ms ping sends every 10 ms and the restore is
// known only to within that; and below 10 ms it spins a core. This thread
// sleeps in ppoll(2) until the next send or a reply, so it keeps its period
// while nothing comes back, and sleeps between sends instead of spinning.
//
// Stamps are CLOCK_MONOTONIC (process.hrtime, the run clock's source) taken
// right before sendto(2) and right after recv(2) returns. Before, not after:
// the request leaves during the call (on a veth its reply can be back before
// the call returns), and a thread that loses its CPU on the way out dates it
// late: in one test run a request stamped 1.9 ms after the one before (at a
// 1 ms period) had its reply 12 µs after that stamp, a round trip the veth
// never gives, and so seemed to be sent, and answered, inside the cut.
// Plain JavaScript: worker threads do not inherit the TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

const { family, address, periodNs, silentPeriodNs, originNs, realtime, stop } = workerData;
const stopFlag = new Int32Array(stop);

const libc = koffi.load('libc.so.6');
const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const sendto = libc.func('intptr_t sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t addrlen)');
const recv = libc.func('intptr_t recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)');
const closeFd = libc.func('int close(int fd)');
const ppoll = libc.func('int ppoll(_Inout_ uint8_t *fds, uint64_t nfds, const uint8_t *tmo, void *sigmask)');
const strerror = libc.func('const char *strerror(int errnum)');

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
const MSG_DONTWAIT = 0x40;
const POLLIN = 1;
const EAGAIN = 11;
const v6 = family === 6;

function fail(message, denied = false) {
  parentPort.postMessage({ what: 'fatal', message, denied });
  process.exit(0);
}

// A raw socket needs root or CAP_NET_RAW; an ICMP datagram socket needs the
// user's group in net.ipv4.ping_group_range (the kernel's own default, "1 0",
// admits no group; some distributions open it to all). Either one will do.
const domain = v6 ? AF_INET6 : AF_INET;
const proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
let raw = true;
let fd = socketFn(domain, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
if (fd < 0) {
  const rawErr = koffi.errno();
  raw = false;
  fd = socketFn(domain, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0)
    fail(
      `cannot open an ICMP socket: raw: ${strerror(rawErr)}, datagram: ${strerror(koffi.errno())}; ` +
        'run as root (or with CAP_NET_RAW), allow your group in net.ipv4.ping_group_range, or use client: ping',
      true,
    );
}

if (realtime) {
  // pid 0 = this thread only; without the privilege it stays a normal thread
  const SchedParam = koffi.struct('blackout_icmp_sched_param', { sched_priority: 'int' });
  const setScheduler = libc.func('int sched_setscheduler(int pid, int policy, const blackout_icmp_sched_param *param)');
  setScheduler(0, 1 /* SCHED_FIFO */, { sched_priority: 10 });
}

const addr = v6 ? Buffer.alloc(28) : Buffer.alloc(16);
addr.writeUInt16LE(domain, 0);
if (v6) Buffer.from(address.bytes).copy(addr, 8);
else Buffer.from(address.bytes).copy(addr, 4);

// Echo request: type, code, checksum, identifier, sequence (16 bits), then our
// payload: the full 32-bit sequence and a random token, so a raw socket (which
// sees every echo reply on the host) keeps only its own, and the sequence never
// wraps. A datagram socket's kernel replaces the identifier and filters for us.
const ident = (Math.random() * 0xffff) | 0;
const token = (Math.random() * 0xffffffff) >>> 0;
const packet = Buffer.alloc(16);
packet[0] = v6 ? 128 : 8;
packet.writeUInt16BE(ident, 4);
packet.writeUInt32BE(token, 12);
const replyType = v6 ? 129 : 0;

// ICMP errors about our requests (a router or this host saying "unreachable",
// e.g. once the neighbour's ARP entry has expired on a same-LAN pull): a
// local error, not silence, as iputils prints "From …" lines for them.
const UNREACHABLE = v6
  ? { 1: ['no route', 'administratively prohibited', 'beyond scope', 'address unreachable', 'port unreachable'], 3: ['hop limit exceeded'] }
  : {
      3: [
        'net unreachable',
        'host unreachable',
        'protocol unreachable',
        'port unreachable',
        'fragmentation needed',
        'source route failed',
        'net unknown',
        'host unknown',
        'source host isolated',
        'net prohibited',
        'host prohibited',
        'net unreachable for TOS',
        'host unreachable for TOS',
        'communication administratively prohibited',
      ],
      11: ['time to live exceeded'],
    };
const errorSeen = new Map();

function checksum(buf) {
  let sum = 0;
  for (let i = 0; i < buf.length; i += 2) sum += buf.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

// Send times by sequence, for 65 536 requests back (65 s at 1 ms): a reply
// held longer than that is dropped.
const RING = 65536;
const sentAt = new Float64Array(RING);
const sentSeq = new Uint32Array(RING);
const answered = new Uint8Array(RING);
const step = new Float64Array(RING);

// Run-clock ms without a BigInt per reading (the loop allocates as little as
// it can: a garbage collection stops this thread, and one 4.7 ms collection
// coincided with a 4.8 ms gap between sends): performance.now() runs on the
// same monotonic clock as process.hrtime, from this thread's own origin, so
// one offset (the smallest of a few readings) maps it.
let offset = Infinity;
for (let i = 0; i < 5; i++) {
  const a = performance.now();
  const b = Number(process.hrtime.bigint() - BigInt(originNs)) / 1e6;
  offset = Math.min(offset, b - a);
}
const now = () => performance.now() + offset;
const periodMs = Number(periodNs) / 1e6;
// While replies are missing the thread sends every silentMs instead (when
// that is shorter): at a 10 ms period the restore would otherwise be known
// only to within one period, and the requests cost nothing while the target
// cannot receive them. "Missing" means nothing for two periods and twice the
// longest of the last round trips, so ordinary jitter (or a slow WAN target)
// does not set it off; the first reply ends it, and the grid goes on as if
// nothing had happened.
const silentMs = Math.min(Number(silentPeriodNs) / 1e6, periodMs);
const RTTS = 16;
const rtts = new Float64Array(RTTS);
let rttNext = 0;
// when replies count as missing: set by each reply (never before the first one: a target that never
// answered is unreachable, not cut off)
let silentFrom = Infinity;
let lastSendAt = -Infinity;
const maxWaitMs = 50; // the stop flag and the batches are looked at least this often

const fds = Buffer.alloc(8);
fds.writeInt32LE(fd, 0);
fds.writeInt16LE(POLLIN, 4);
const rx = Buffer.alloc(2048);
const tmo = Buffer.alloc(16); // struct timespec

let seq = 0;
// the grid's phase is random: it owes nothing to when the run's cuts fall
let next = now() + Math.random() * periodMs;
let batch = [];
let lastPost = next;
let lastErrno = 0;
let lastErrorPost = -Infinity;

function post(force) {
  const t = now();
  if (batch.length && (force || t - lastPost >= 20)) {
    const out = Float64Array.from(batch);
    parentPort.postMessage({ what: 'replies', data: out }, [out.buffer]);
    batch = [];
    lastPost = t;
  }
}

function send() {
  seq = (seq + 1) >>> 0;
  const prev = (seq - 1) % RING;
  packet.writeUInt16BE(0, 2);
  packet.writeUInt16BE(seq & 0xffff, 6);
  packet.writeUInt32BE(seq, 8);
  if (!v6) packet.writeUInt16BE(checksum(packet), 2);
  const t = now();
  const rc = sendto(fd, packet, packet.length, 0, addr, addr.length);
  const slot = seq % RING;
  lastSendAt = t;
  sentAt[slot] = t;
  // the step from the request before (answered or not): where a restore lies when this one is the first answered after it
  step[slot] = seq > 1 && sentSeq[prev] === seq - 1 ? t - sentAt[prev] : NaN;
  sentSeq[slot] = seq;
  answered[slot] = 0;
  if (rc < 0) {
    // a local error (no route, a neighbour that does not answer ARP), not
    // silence: said once per errno and second, like ping's "From …" lines
    const errno = koffi.errno();
    if (errno !== lastErrno || t - lastErrorPost > 1000) {
      parentPort.postMessage({ what: 'error', t, message: `sendto: ${strerror(errno)}` });
      lastErrno = errno;
      lastErrorPost = t;
    }
  } else lastErrno = 0;
}

function drain() {
  for (;;) {
    const n = Number(recv(fd, rx, rx.length, MSG_DONTWAIT));
    if (n < 0) {
      const errno = koffi.errno();
      // a datagram socket reports an ICMP error about a request as the error of the next recv
      if (errno !== EAGAIN) say(now(), `recv: ${strerror(errno)}`);
      return;
    }
    const t = now();
    // a raw IPv4 socket gets the IP header first; IPv6 and datagram sockets do not
    const off = raw && !v6 ? (rx[0] & 0x0f) * 4 : 0;
    if (raw && UNREACHABLE[rx[off]] && n >= off + 8) {
      icmpError(rx, off, n, t);
      continue;
    }
    if (n < off + 16 || rx[off] !== replyType) continue;
    if (raw && (rx.readUInt16BE(off + 4) !== ident || rx.readUInt32BE(off + 12) !== token)) continue;
    const s = rx.readUInt32BE(off + 8);
    const slot = s % RING;
    if (sentSeq[slot] !== s || answered[slot]) continue; // too old, or a duplicate
    answered[slot] = 1;
    rtts[rttNext] = t - sentAt[slot];
    rttNext = (rttNext + 1) % RTTS;
    let longest = 0;
    for (let i = 0; i < RTTS; i++) longest = Math.max(longest, rtts[i]);
    silentFrom = t + 2 * periodMs + 2 * longest;
    batch.push(s, sentAt[slot], t, step[slot]);
  }
}

/** An ICMP error that quotes one of our requests: said once per kind and second (at 1 ms there is one per request). */
function icmpError(buf, off, n, t) {
  // the quoted packet: its IP header (IPv4: variable, IPv6: 40 bytes), then our echo request's first 8 bytes
  const inner = off + 8;
  const icmp = v6 ? inner + 40 : inner + (buf[inner] & 0x0f) * 4;
  if (n < icmp + 8 || buf[icmp] !== packet[0] || buf.readUInt16BE(icmp + 4) !== ident) return;
  const text = UNREACHABLE[buf[off]][buf[off + 1]] ?? `ICMP type ${buf[off]} code ${buf[off + 1]}`;
  const from = v6 ? '' : `From ${buf[12]}.${buf[13]}.${buf[14]}.${buf[15]}: `;
  const message = `${from}${text} (icmp_seq=${buf.readUInt16BE(icmp + 6)})`;
  say(t, message, `${from}${text}`);
}

/** a local error, said once per kind (`key`) and second */
function say(t, message, key = message) {
  if (t - (errorSeen.get(key) ?? -Infinity) < 1000) return;
  errorSeen.set(key, t);
  parentPort.postMessage({ what: 'error', t, message });
}

/** when the next request goes: the grid's next slot, or sooner while replies are missing */
function due(grid) {
  return silentMs < periodMs ? Math.min(grid, Math.max(silentFrom, lastSendAt + silentMs)) : grid;
}

parentPort.postMessage({ what: 'ready', raw });
while (Atomics.load(stopFlag, 0) === 0) {
  let t = now();
  if (t >= due(next)) {
    send();
    // the next slot on the grid; slots missed while this thread waited for a CPU (or that a silent send took) are skipped, not sent in a burst
    t = now();
    if (next <= t) next += (Math.floor((t - next) / periodMs) + 1) * periodMs;
  }
  const wait = Math.min(due(next) - t, maxWaitMs);
  if (wait > 0) {
    tmo.writeUInt32LE(Math.round(wait * 1e6), 8); // tv_nsec (tv_sec stays 0: the wait is under 50 ms)
    fds.writeInt16LE(0, 6);
    ppoll(fds, 1, tmo, null);
  }
  drain();
  post(false);
}
closeFd(fd);
post(true);
parentPort.postMessage({ what: 'stopped', sent: seq });
