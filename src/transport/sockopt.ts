/**
 * TCP socket options Node does not expose (TCP_USER_TIMEOUT, TCP_KEEPINTVL,
 * TCP_KEEPCNT), set with setsockopt(2) through libc.ts. Linux constants.
 */
import type { Socket } from 'node:net';
import { libc } from './libc.ts';

const SOL_SOCKET = 1;
const SO_KEEPALIVE = 9;
const IPPROTO_TCP = 6;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;
const TCP_USER_TIMEOUT = 18;

function setsockopt(fd: number, level: number, name: number, value: number): void {
  const rc = libc().setsockopt(fd, level, name, [value], 4);
  if (rc !== 0) throw new Error(`setsockopt(${level}, ${name}, ${value}) failed`);
}

function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no file descriptor yet');
  return fd;
}

export interface KeepalivePolicy {
  /** idle time before the first probe, ms */
  idle: number;
  /** between probes, ms */
  interval: number;
  /** unanswered probes before the kernel gives up */
  count: number;
}

export function setKeepalive(socket: Socket, k: KeepalivePolicy): void {
  const fd = fdOf(socket);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, Math.max(1, Math.round(k.idle / 1000)));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, Math.max(1, Math.round(k.interval / 1000)));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, Math.max(1, k.count));
}

/** TCP_USER_TIMEOUT: how long sent data may stay unacknowledged before the kernel drops the connection (ETIMEDOUT). */
export function setUserTimeout(socket: Socket, ms: number): void {
  setsockopt(fdOf(socket), IPPROTO_TCP, TCP_USER_TIMEOUT, Math.round(ms));
}

const TCP_INFO = 11;
/** the fields of struct tcp_info (linux/tcp.h) up to tcpi_segs_in (Linux 4.2); an older kernel fills fewer */
const TCP_INFO_LEN = 144;

/** What the kernel knows about a connection (TCP_INFO), the fields a blackout shows in. */
export interface TcpInfo {
  /** TCP state (1 ESTABLISHED, 7 CLOSE, …) */
  state: number;
  /** retransmissions of the current unacknowledged segment (the backoff count) */
  retransmits: number;
  /** keepalive (or zero-window) probes sent without an answer */
  probes: number;
  /** segments sent and not yet acknowledged */
  unacked: number;
  /** ms since the last ACK received from the peer: the silence the kernel sees */
  lastAckRecvMs: number;
  /** ms since the last data received */
  lastDataRecvMs: number;
  /** ms since the last data sent */
  lastDataSentMs: number;
  /** smoothed round-trip time, ms */
  rttMs: number;
  /** the current retransmission timeout, ms */
  rtoMs: number;
  /** retransmissions over the connection's life */
  totalRetrans: number;
  /** segments received over the connection's life (a keepalive answer is one); null before Linux 4.2 */
  segsIn: number | null;
}

/** Reads TCP_INFO of a connected socket through getsockopt(2). */
export function tcpInfo(socket: Socket): TcpInfo {
  const buf = Buffer.alloc(TCP_INFO_LEN);
  const len = [TCP_INFO_LEN];
  const rc = libc().getsockopt(fdOf(socket), IPPROTO_TCP, TCP_INFO, buf, len);
  if (rc !== 0) throw new Error('getsockopt(TCP_INFO) failed');
  return {
    state: buf.readUInt8(0),
    retransmits: buf.readUInt8(2),
    probes: buf.readUInt8(3),
    rtoMs: buf.readUInt32LE(8) / 1000,
    unacked: buf.readUInt32LE(24),
    lastDataSentMs: buf.readUInt32LE(44),
    lastDataRecvMs: buf.readUInt32LE(52),
    lastAckRecvMs: buf.readUInt32LE(56),
    rttMs: buf.readUInt32LE(68) / 1000,
    totalRetrans: buf.readUInt32LE(100),
    segsIn: len[0]! >= TCP_INFO_LEN ? buf.readUInt32LE(140) : null,
  };
}
