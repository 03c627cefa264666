/**
 * The libvirt injector's cut and restore instants come from libvirt's own
 * lifecycle events, placed on the run clock by their distance from the
 * hypervisor's "now": the parsing and the placing, without a hypervisor.
 */
import { describe, expect, it } from 'vitest';
import { parseLifecycle } from '../../src/injectors/libvirt.ts';
import { heardInstant } from '../../src/injectors/shared/hypervisor.ts';

// what the listener's file holds after a save and a restore, then `date +%s.%N`
const out = [
  'qemu:///system?socket=/run/x/libvirt-sock',
  '',
  "2026-12-04 11:24:38.326+0000: event 'lifecycle' for domain 'app01': Suspended Paused",
  "2026-12-04 11:24:38.400+0000: event 'lifecycle' for domain 'app02': Suspended Paused",
  "2026-12-04 11:24:40.264+0000: event 'lifecycle' for domain 'app01': Stopped Saved",
  "2026-12-04 11:24:41.304+0000: event 'lifecycle' for domain 'app01': Started Restored",
  "2026-12-04 12:24:41.314+0100: event 'lifecycle' for domain 'app01': Resumed Snapshot",
  '1796383482.314000000',
].join('\n');

describe('libvirt lifecycle events', () => {
  it('keeps the one domain, its stops and its resume, on the wall clock (any UTC offset)', () => {
    const h = parseLifecycle(out, 'app01')!;
    const t0 = Date.UTC(2026, 11, 4, 11, 24, 38, 326);
    expect(h.changes).toEqual([
      { wallMs: t0, running: false },
      { wallMs: t0 + 1938, running: false },
      { wallMs: t0 + 2988, running: true },
    ]);
    expect(h.nowWallMs).toBe(1796383482314);
    expect(parseLifecycle(out, 'app0')!.changes).toEqual([]); // a name is matched whole
    expect(parseLifecycle('no clock here', 'app01')).toBeNull();
  });

  it('places a heard instant on the run clock within the call', () => {
    const h = parseLifecycle(out, 'app01')!;
    // "now" on the hypervisor (…82.314) was read at run-clock 10 000 (the read took 10 ms): it is 1 000 ms
    // after the resume, so the guest ran again at 9 000, inside the restore call [8 000, 10 000]
    const read = { before: 9995, t: 10_005 };
    expect(heardInstant(h, read, { before: 8000, t: 9900 }, true)).toBe(9000);
    // the suspend 2 988 ms before the resume
    expect(heardInstant(h, read, { before: 5900, t: 6100 }, false)).toBe(6012);
    // heard before the call started (beyond the read's slack): a stale change, not this call's
    expect(heardInstant(h, read, { before: 9100, t: 9900 }, true)).toBeNull();
    // heard after the call returned (a late listener): the return bounds it
    expect(heardInstant(h, read, { before: 8000, t: 8500 }, true)).toBe(8500);
    // within the read's slack before the call's start: the start
    expect(heardInstant(h, read, { before: 9004, t: 9900 }, true)).toBe(9004);
    expect(heardInstant(null, read, { before: 8000, t: 9900 }, true)).toBeNull();
  });
});
