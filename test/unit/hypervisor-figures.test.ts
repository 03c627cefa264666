import { describe, expect, it } from 'vitest';
import type { TrialResult } from '../../src/analysis/analysis.ts';
import { hypervisorFigures } from '../../src/reporters/hypervisor-figures.ts';

const trial = (info: Array<Record<string, unknown>>): TrialResult =>
  ({
    index: 0,
    requestedMs: 0,
    complete: true,
    injected: { cutAt: 1000, restoredAt: 1116, durationMs: 116 },
    injectorInfo: info,
    probes: { ping: { kind: 'icmp', observedOutageMs: 131 }, echo: { kind: 'tcp', observedOutageMs: null } },
  }) as unknown as TrialResult;

describe('hypervisor figures beside the measured outage', () => {
  it("puts QEMU's own downtime next to what the sessions saw", () => {
    const rows = hypervisorFigures(trial([{ qemuDowntimeMs: 14, stopToResumeMs: 116, qemuTotalTimeMs: 515 }]));
    expect(rows).toEqual([
      { label: 'QEMU-reported downtime', ms: 14, source: 'hypervisor' },
      { label: 'QEMU stop → resume (its events)', ms: 116, source: 'hypervisor' },
      { label: 'QEMU total migration time', ms: 515, source: 'hypervisor' },
      { label: 'injected window (cut → restore)', ms: 116, source: 'harness' },
      { label: 'outage seen by ping (icmp)', ms: 131, source: 'harness' },
    ]);
  });
  it('says nothing for an injector without figures of its own', () => {
    expect(hypervisorFigures(trial([]))).toEqual([]);
    expect(hypervisorFigures(trial([{ mechanism: 'nft' }]))).toEqual([]);
  });
});
