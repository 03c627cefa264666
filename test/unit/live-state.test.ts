/** The one live-state fold and the one format module, as the live view, the manual screen and the runner use them. */
import { describe, expect, it } from 'vitest';
import type { BlackoutEvent } from '../../src/core/events.ts';
import { LiveState } from '../../src/core/live-state.ts';
import { formatLength, formatMs, OUTCOME_GLYPH, sessionStateText, survived } from '../../src/core/format.ts';

const start: BlackoutEvent = {
  type: 'run-start',
  t: 0,
  schema: 1,
  runId: 'r',
  suite: 's',
  config: {},
  wallMs: 0,
  host: 'h',
  target: { name: 'lab', address: '10.213.0.2' },
  injector: { kind: 'cable-pull', migration: 'none' },
  version: '0',
  probes: [{ name: 'echo', kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: {} }],
};

describe('LiveState', () => {
  it('folds a trial: ok, silent through the cut, lost, reopened, ok after the restore', () => {
    const live = new LiveState();
    const feed = (e: BlackoutEvent) => live.add(e);
    feed(start);
    feed({ type: 'trial-start', t: 10, trial: 0, requestedMs: 2000 });
    feed({ type: 'sample', t: 100, probe: 'echo', trial: 0, latencyMs: 0.4 });
    feed({ type: 'cut', t: 200, before: 199, deadline: 2400, trial: 0 });
    expect(live.cutAt).toBe(200);
    expect(live.silenceMs('echo', 1200)).toBe(1100);
    feed({ type: 'session-lost', t: 1500, probe: 'echo', trial: 0, message: 'read ETIMEDOUT' });
    expect(live.sessions.get('echo')).toMatchObject({ lost: 'read ETIMEDOUT', lastError: 'read ETIMEDOUT', okAfterRestore: false });
    expect(sessionStateText(live.sessions.get('echo')!, 1600)).toContain('LOST  read ETIMEDOUT');
    feed({ type: 'restore', t: 2200, before: 2199, trial: 0, reason: 'scheduled' });
    feed({ type: 'session-open', t: 2300, probe: 'echo', trial: 0, reconnect: true });
    feed({ type: 'sample', t: 2350, probe: 'echo', trial: 0, latencyMs: 0.5 });
    expect(live.sessions.get('echo')).toMatchObject({ lost: null, okAfterRestore: true, lastOkAt: 2350 });
    expect(sessionStateText(live.sessions.get('echo')!, 2400)).toContain('ok');
    expect(sessionStateText(live.sessions.get('echo')!, 4400)).toContain('STALLED 2.05 s');
    // the next trial starts from a clean slate
    feed({ type: 'trial-start', t: 5000, trial: 1, requestedMs: 5000 });
    expect(live.sessions.get('echo')).toMatchObject({ lastOkAt: null, okAfterRestore: false });
    expect(live.restoredAt).toBe(Infinity);
  });
});

describe('format', () => {
  it('one rule for measured and for requested lengths', () => {
    expect(formatMs(0)).toBe('0 ms');
    expect(formatMs(2000)).toBe('2.00 s');
    expect(formatMs(13_400)).toBe('13.4 s');
    expect(formatMs(150_000)).toBe('2.5 min');
    expect(formatMs(null)).toBe('–');
    expect(formatLength(0)).toBe('natural length');
    expect(formatLength(2000)).toBe('2 s');
    expect(formatLength(1250)).toBe('1.25 s');
    expect(formatLength(Infinity)).toBe('∞');
  });

  it('one glyph per outcome, and survived means transparent or stalled', () => {
    expect(new Set(Object.values(OUTCOME_GLYPH)).size).toBe(5);
    expect(OUTCOME_GLYPH.recovered).toBe('↻');
    expect(['transparent', 'stalled', 'recovered', 'failed', 'unknown'].filter((o) => survived(o as never))).toEqual(['transparent', 'stalled']);
  });
});
