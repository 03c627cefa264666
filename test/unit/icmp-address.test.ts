/** The socket sender's address bytes (sockaddr_in / sockaddr_in6), from literal addresses. */
import { describe, expect, it } from 'vitest';
import { resolveAddress } from '../../src/transport/icmp-socket.ts';

describe('icmp socket sender: address bytes', () => {
  it.each([
    ['10.213.0.2', 4, [10, 213, 0, 2]],
    ['::1', 6, [...Array<number>(15).fill(0), 1]],
    ['fe80::1%eth0', 6, [0xfe, 0x80, ...Array<number>(13).fill(0), 1]],
    ['::ffff:192.0.2.1', 6, [...Array<number>(10).fill(0), 0xff, 0xff, 192, 0, 2, 1]],
    ['2001:db8::8:800:200c:417a', 6, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 8, 8, 0, 0x20, 0x0c, 0x41, 0x7a]],
    ['1:2:3:4:5:6:7:8', 6, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]],
  ])('%s', async (address, family, bytes) => {
    expect(await resolveAddress(address)).toEqual({ family, bytes });
  });
});
