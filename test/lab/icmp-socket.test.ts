/**
 * The icmp probe's socket sender (transport/icmp-socket.ts) against the
 * kernel's own echo replies on the loopback interface, IPv4 and IPv6: replies
 * come back with their sequence numbers in order and their send and receive
 * stamps on the run clock, and stop() ends the thread and closes the socket.
 * Its accuracy through a cut is measured on the lab by run.test.ts and by the
 * accuracy benchmark.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createClock, sleep } from '../../src/core/clock.ts';
import { watchPinger } from '../helpers/pinger.ts';

/** this process's open ICMP sockets are not listed by name: count every socket fd instead */
const sockets = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;

async function pingFor(address: string, ms: number) {
  const clock = createClock();
  const before = sockets();
  let during = 0;
  const w = await watchPinger(
    address,
    async () => {
      during = sockets();
      await sleep(ms);
    },
    clock,
  );
  await sleep(50);
  return { ...w, before, during, after: sockets(), lateReplies: w.replies.length - w.repliesAtStop, now: clock.now() };
}

describe('icmp socket sender', () => {
  for (const address of ['127.0.0.1', '::1']) {
    it(`pings ${address} on a fixed period and stops cleanly`, async () => {
      const r = await pingFor(address, 400);
      expect(r.errors).toEqual([]);
      expect(r.replies.length).toBeGreaterThan(50);
      // loopback loses nothing: every request up to the last answered one came back, in order
      r.replies.forEach((x, i) => {
        expect(x.seq).toBe(i + 1);
        expect(x.receivedAt).toBeGreaterThanOrEqual(x.sentAt);
        expect(x.sentAt).toBeGreaterThan(0);
        expect(x.receivedAt).toBeLessThan(r.now);
      });
      expect(r.sent).toBeGreaterThanOrEqual(r.replies.length);
      // one socket while it ran, closed by stop(); nothing delivered after stop() resolved
      expect(r.during).toBe(r.before + 1);
      expect(r.after).toBe(r.before);
      expect(r.lateReplies).toBe(0);
    });
  }
});
