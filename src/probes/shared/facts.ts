/**
 * Small builders for a probe's typed client facts (core/probe.ts), so each
 * probe file states its deadlines in one readable line each.
 */
import type { ClientDeadline, ClientFacts } from '../../core/probe.ts';

const s = (ms: number): string => (ms >= 1000 ? `${+(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

/** an application timer on the client's own clock; none when unset (0 or undefined) */
export function request(ms: number | undefined, what: string): ClientDeadline[] {
  return ms ? [{ type: 'request', ms, what: `${what} ${s(ms)}: the client gives up waiting for an answer after that long` }] : [];
}

/** the kernel's TCP_USER_TIMEOUT; none when unset */
export function userTimeout(ms: number | undefined, what = 'TCP user timeout'): ClientDeadline[] {
  return ms ? [{ type: 'user-timeout', ms, what: `${what} ${s(ms)}: unacknowledged data for longer kills the connection` }] : [];
}

/** an application keepalive: `count` unanswered probes every `intervalMs` end the session */
export function keepalive(k: { intervalMs: number; count: number } | undefined, what: string): ClientDeadline[] {
  return k ? [{ type: 'keepalive', intervalMs: k.intervalMs, count: k.count, what: `${what} ${s(k.intervalMs)} × ${k.count}` }] : [];
}

/** the kernel's keepalive on an idle connection (its only traffic); none when unset */
export function idleKeepalive(k: { idle: number; interval: number; count: number } | undefined, what = 'TCP keepalive'): ClientDeadline[] {
  return k
    ? [
        {
          type: 'idle-keepalive',
          idleMs: k.idle,
          intervalMs: k.interval,
          count: k.count,
          what: `${what} ${s(k.idle)} idle, ${s(k.interval)} × ${k.count}: an idle connection's only traffic is the kernel's keepalive probes`,
        },
      ]
    : [];
}

/** a note for a setting that does not bound a blackout; none when unset */
export function note(set: unknown, text: string): string[] {
  return set ? [text] : [];
}

export function sessionFacts(deadlines: ClientDeadline[], notes: string[], reconnect: boolean): ClientFacts {
  return { session: true, deadlines, notes, reconnect };
}
