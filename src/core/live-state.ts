/**
 * The live state of each probe's session, folded from the event stream: one
 * fold for everything that watches a run as it happens (the runner's recovery
 * watch, the live view, the manual injector's screen, the metrics endpoint).
 * Pure: it only reads events; the watcher decides what "now" is.
 */
import type { BlackoutEvent } from './events.ts';

export interface SessionState {
  name: string;
  kind: string;
  /** run-clock ms of the last good sample, null before the first */
  lastOkAt: number | null;
  latencyMs: number | null;
  /** the message of the loss while the session is lost, else null */
  lost: string | null;
  lastError: string | null;
  /** a good sample came after this trial's restore */
  okAfterRestore: boolean;
}

export class LiveState {
  readonly sessions = new Map<string, SessionState>();
  private probes: Array<{ name: string; kind: string }> = [];
  /** the current trial's restore instant (Infinity before it) */
  restoredAt = Infinity;
  /** the current trial's cut instant, null outside the blackout */
  cutAt: number | null = null;

  add(e: BlackoutEvent): void {
    switch (e.type) {
      case 'run-start':
        this.probes = e.probes.map((p) => ({ name: p.name, kind: p.kind }));
        this.reset();
        return;
      case 'trial-start':
        this.reset();
        return;
      case 'cut':
        this.cutAt = e.t;
        return;
      case 'restore':
        this.restoredAt = e.t;
        this.cutAt = null;
        return;
      case 'sample': {
        const s = this.session(e.probe);
        s.lastOkAt = Math.max(s.lastOkAt ?? -Infinity, e.t);
        s.latencyMs = e.latencyMs ?? null;
        s.lost = null;
        if (e.t > this.restoredAt) s.okAfterRestore = true;
        return;
      }
      case 'session-lost': {
        const s = this.session(e.probe);
        s.lost = e.message;
        s.lastError = e.message;
        return;
      }
      case 'session-open':
        this.session(e.probe).lost = null;
        return;
      case 'probe-error':
        this.session(e.probe).lastError = e.message;
        return;
      default:
        return;
    }
  }

  /** ms since the session's last good sample (null before the first) */
  silenceMs(name: string, now: number): number | null {
    const s = this.sessions.get(name);
    return s?.lastOkAt == null ? null : now - s.lastOkAt;
  }

  private reset(): void {
    this.sessions.clear();
    this.restoredAt = Infinity;
    this.cutAt = null;
    for (const p of this.probes) this.sessions.set(p.name, { name: p.name, kind: p.kind, lastOkAt: null, latencyMs: null, lost: null, lastError: null, okAfterRestore: false });
  }

  private session(name: string): SessionState {
    let s = this.sessions.get(name);
    if (!s) {
      s = { name, kind: '?', lastOkAt: null, latencyMs: null, lost: null, lastError: null, okAfterRestore: false };
      this.sessions.set(name, s);
    }
    return s;
  }
}
