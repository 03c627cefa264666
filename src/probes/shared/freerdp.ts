/**
 * What the rdp probe knows of its client, FreeRDP 2 (xfreerdp): the defaults
 * its command line cannot change, what its exit codes and log lines mean, and
 * the certificate fingerprint in the form it compares.
 */

/** FreeRDP 2 defaults that its command line cannot change */
export const FREERDP_DEFAULTS = { tcpAckTimeoutMs: 9000, keepaliveIdleMs: 5000, keepaliveIntervalMs: 2000, connectTimeoutMs: 15000 } as const;

/** Seconds of silence after which the kernel drops a passive FreeRDP 2 client's connection. */
export function expectedDropAfterMs(timeoutMs: number): number {
  const { keepaliveIdleMs: idle, keepaliveIntervalMs: step } = FREERDP_DEFAULTS;
  // the keepalive timer fires at idle, idle+step, …; it closes at the first firing with a probe
  // outstanding (so not the first) once the silence is at least the user timeout
  let t = idle + step;
  while (t < timeoutMs) t += step;
  return t;
}

/** xfreerdp's exit codes (FreeRDP 2, client/X11/xf_client.h), the ones a blackout can produce */
const EXIT_CODES: Record<number, string> = {
  0: 'success',
  1: 'disconnected',
  2: 'logged off',
  3: 'idle timeout',
  4: 'logon timeout',
  5: 'connection replaced by another client',
  7: 'connection denied',
  11: 'disconnected by the user',
  12: 'logged off (ERRINFO_LOGOFF_BY_USER: xrdp also says so when another client took the session)',
  131: 'connection failed',
  132: 'authentication failure',
  133: 'negotiation failure',
  134: 'logon failure',
  141: 'connect failed',
  143: 'TLS connect failed',
  147: 'connect transport failed',
  154: 'wrong password',
  159: 'no or missing credentials',
};

export function exitMeaning(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`;
  if (code === null) return 'exited';
  return `exit ${code}${EXIT_CODES[code] ? ` (${EXIT_CODES[code]})` : ''}`;
}

export interface FreerdpLine {
  level: string;
  tag: string;
  message: string;
}

/** Parses one line of FreeRDP's log: "[time] [pid:tid] [LEVEL][tag] - message". */
export function parseFreerdpLine(line: string): FreerdpLine | null {
  const m = /\[(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\]\[([^\]]+)\] - (.*)$/.exec(line);
  return m ? { level: m[1]!, tag: m[2]!, message: m[3]!.trim() } : null;
}

export const FINGERPRINT = /^sha256:((?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{64})$/;

/** "sha256:abcd…" or "sha256:AB:CD:…" → "sha256:ab:cd:…" (the form FreeRDP compares) */
export function normaliseFingerprint(fp: string): string {
  const hex = fp.slice('sha256:'.length).replace(/:/g, '').toLowerCase();
  return `sha256:${hex.match(/../g)!.join(':')}`;
}
