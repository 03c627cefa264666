/** The icmp probe's socket sender, run directly by a test: its replies and errors while `during` runs. */
import { createClock, type Clock } from '../../src/core/clock.ts';
import { startPinger, type EchoReply } from '../../src/transport/icmp-socket.ts';

export interface Watched {
  replies: EchoReply[];
  errors: string[];
  /** requests sent, as stop() reports them */
  sent: number;
  /** replies delivered before stop() resolved (any after it would be a leak) */
  repliesAtStop: number;
}

/** 1 ms echo requests to `address` from start to the end of `during` (given the clock the stamps are on), then stop() */
export async function watchPinger(address: string, during: (clock: Clock) => Promise<void>, clock = createClock()): Promise<Watched> {
  const replies: EchoReply[] = [];
  const errors: string[] = [];
  const p = await startPinger({
    address,
    periodMs: 1,
    originNs: clock.originNs,
    realtime: false,
    onReplies: (r) => replies.push(...r),
    onError: (_t, m) => errors.push(m),
    onFatal: (m) => errors.push(m),
  });
  await p.ready;
  await during(clock);
  const sent = await p.stop();
  return { replies, errors, sent, repliesAtStop: replies.length };
}
