/**
 * The icmp probe's default sender is its own socket thread; without the
 * rights to open an ICMP socket it says so and runs the system ping instead.
 * Any other failure to open (the target does not answer) is not the
 * client's and stays the preflight's error. The pure wrapper, with probes
 * that only record what was called.
 */
import { describe, expect, it } from 'vitest';
import { withFallback } from '../../src/probes/icmp.ts';
import { IcmpSocketDenied } from '../../src/transport/icmp-socket.ts';
import type { Probe } from '../../src/core/probe.ts';

function probe(name: string, calls: string[], fails?: Error): Probe {
  return {
    async open() {
      calls.push(`${name}.open`);
      if (fails) throw fails;
    },
    async close() {
      calls.push(`${name}.close`);
    },
  };
}

describe('icmp probe: the socket sender, or ping when ICMP sockets are not allowed', () => {
  it('opens and closes the socket sender when it can', async () => {
    const calls: string[] = [];
    const said: string[] = [];
    const p = withFallback(
      probe('socket', calls),
      () => probe('ping', calls),
      (w) => said.push(w),
    );
    await p.open();
    await p.close();
    expect(calls).toEqual(['socket.open', 'socket.close']);
    expect(said).toEqual([]);
  });

  it('falls back to ping, and says why, when no ICMP socket may be opened', async () => {
    const calls: string[] = [];
    const said: string[] = [];
    const p = withFallback(
      probe('socket', calls, new IcmpSocketDenied('cannot open an ICMP socket: raw: Operation not permitted')),
      () => probe('ping', calls),
      (w) => said.push(w),
    );
    await p.open();
    await p.close();
    expect(calls).toEqual(['socket.open', 'ping.open', 'ping.close']);
    expect(said).toEqual(['cannot open an ICMP socket: raw: Operation not permitted']);
  });

  it('keeps any other error: a target that does not answer is not a client problem', async () => {
    const calls: string[] = [];
    const p = withFallback(
      probe('socket', calls, new Error('icmp 10.0.0.9: no reply within 3 s')),
      () => probe('ping', calls),
      () => {},
    );
    await expect(p.open()).rejects.toThrow(/no reply within 3 s/);
    expect(calls).toEqual(['socket.open']);
  });
});
