/**
 * tcp hold: a sample is a keepalive answer the kernel received, and nothing
 * else. On a loaded machine the thread can be descheduled around the
 * TCP_INFO read, so the clock moves between the read and the dating of it; a
 * sample found by "the last ACK looks later than before" then appears with no
 * ACK behind it (a median interval of 515 ms for 1 s keepalives was seen).
 * Here the clock jumps 25 ms at every reading, on a real idle connection to a
 * local server with 1 s keepalives: only the kernel's segment count may make
 * samples.
 */
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClock } from '../../src/core/clock.ts';
import type { ProbeContext, ProbeEvent } from '../../src/core/probe.ts';
import { tcp } from '../../src/probes/tcp.ts';

const peers: Socket[] = [];
const server = createServer((s) => {
  peers.push(s);
  s.on('error', () => {});
});

beforeAll(async () => {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});
afterAll(async () => {
  for (const s of peers) s.destroy();
  server.close();
  await once(server, 'close');
});

describe('tcp hold on a loaded machine', () => {
  it('makes a sample only for a keepalive answer, however the clock jumps around the read', async () => {
    const real = createClock();
    let skew = 0;
    // every reading of the clock finds 25 ms more gone by than really did: a thread descheduled there
    const clock = { ...real, now: () => real.now() + (skew += 25) };
    const events: ProbeEvent[] = [];
    const ac = new AbortController();
    const ctx = {
      name: 'hold',
      trial: 1,
      clock,
      target: { name: 'local', address: '127.0.0.1', services: {} },
      runDir: '',
      signal: ac.signal,
      emit: (e: ProbeEvent) => events.push(e),
      attach: () => '',
    } as unknown as ProbeContext;
    const port = (server.address() as { port: number }).port;
    const config = tcp.schema.parse({ name: 'hold', kind: 'tcp', mode: 'hold', host: '127.0.0.1', port, keepalive: { idle: '1s', interval: '1s', count: 3 } });
    const probe = tcp.create(config, ctx);
    await probe.open();
    await new Promise((r) => setTimeout(r, 3600));
    ac.abort();
    await probe.close();

    const samples = events.filter((e) => e.type === 'sample');
    const dates = samples
      .slice(0, 12)
      .map((e) => Math.round(e.t ?? -1))
      .join(', ');
    // 3.6 s of 1 s keepalives: 3 answers (the first 1 s after connect), give or take one at the edges;
    // a sample per 100 ms poll would be ~35
    expect(samples.length, `samples at ${dates} ms`).toBeGreaterThanOrEqual(2);
    expect(samples.length, `samples at ${dates} ms`).toBeLessThanOrEqual(4);
    expect(events.filter((e) => e.type === 'session-lost')).toHaveLength(0);
  });
});
