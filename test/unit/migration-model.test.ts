/** The seeds' quick-migration model, its verdict, and the predicted breaking points (pure). */
import { probeDefinition } from '../../src/probes/index.ts';
import { describe, expect, it } from 'vitest';
import { LINKS, SEED_MEMORY, defaultLinks, maxMemoryFor, migrationSettings, migrationVerdict, normalizeLink, quickMigrationMs, type LinkName } from '../../src/analysis/migration-model.ts';
import { checkPrediction, kernelGiveUpMs, lastDeliveryBefore, predictBreakingPoint, retransmissionSchedule } from '../../src/analysis/predict.ts';
import { formatBytes } from '../../src/core/format.ts';

const MB = 2 ** 20;
const GB = 2 ** 30;
/** seeds/003_*: "average time it takes for Quick Migration to move a VM" (seconds) */
const SEED_TABLE: Array<[number, Record<'1GbE' | '2GbFC' | '4GbFC', number>]> = [
  [512 * MB, { '1GbE': 8, '2GbFC': 4, '4GbFC': 2 }],
  [1 * GB, { '1GbE': 16, '2GbFC': 8, '4GbFC': 4 }],
  [2 * GB, { '1GbE': 32, '2GbFC': 16, '4GbFC': 8 }],
  [4 * GB, { '1GbE': 64, '2GbFC': 32, '4GbFC': 16 }],
  [8 * GB, { '1GbE': 120 /* "~2 minutes" */, '2GbFC': 64, '4GbFC': 32 }],
];

describe('migration model', () => {
  for (const [mem, row] of SEED_TABLE) {
    for (const [link, seconds] of Object.entries(row)) {
      it(`${formatBytes(mem)} on ${LINKS[link as LinkName].label}: ~${seconds} s within 10 %`, () => {
        const ms = quickMigrationMs(mem, { bytesPerSec: LINKS[link as LinkName].mbPerSec * MB });
        expect(Math.abs(ms / 1000 - seconds) / seconds).toBeLessThanOrEqual(0.1);
      });
    }
  }

  it('inverts: the largest VM for a tolerance, and names links loosely', () => {
    expect(maxMemoryFor(8192, { bytesPerSec: 125 * MB })).toBe(512 * MB);
    expect(normalizeLink('1 GbE iSCSI')).toBe('1GbE');
    expect(normalizeLink('4Gb FC')).toBe('4GbFC');
    expect(normalizeLink('carrier pigeon')).toBeNull();
    expect(SEED_MEMORY).toHaveLength(5);
  });

  it('the weakest session decides; a session that never failed makes it a lower bound; live migration has its own line', () => {
    const settings = migrationSettings({});
    expect(settings.links.map((l) => l.name)).toEqual(defaultLinks().map((l) => l.name));
    const v = migrationVerdict(
      [
        { probe: 'ping', kind: 'icmp', maxSurvivedMs: 20_000, minFailedMs: null, flaky: false },
        { probe: 'console', kind: 'console', maxSurvivedMs: 3000, minFailedMs: 4000, flaky: false },
        { probe: 'db', kind: 'postgres', maxSurvivedMs: 10_000, minFailedMs: 12_000, flaky: false },
      ],
      settings,
    );
    expect(v.limitedBy).toBe('console');
    const gbe = v.overall.find((o) => o.link === '1 GbE iSCSI')!;
    expect(gbe.safeUpToBytes).toBeCloseTo(187.5 * MB, -3);
    expect(gbe.atLeast).toBe(false);
    expect(v.headline).toMatch(/safe for this application for VMs up to 188 MB on 1 GbE iSCSI.*limited by console \(console\), which survived 3 s but not 4 s/);
    expect(v.live.status).toBe('safe');
    // 512 MB on 4 Gb FC is 2 s: every session survived 3 s → safe; on 1 GbE it is 8 s: console failed at 4 s → unsafe
    const row512 = v.table.find((r) => r.memoryBytes === 512 * MB)!;
    expect(row512.cells.find((c) => c.link === '4 Gb FC')!.status).toBe('safe');
    expect(row512.cells.find((c) => c.link === '1 GbE iSCSI')!.status).toBe('unsafe');
    expect(v.perProbe.find((p) => p.probe === 'ping')!.links[0]!.atLeast).toBe(true);

    const none = migrationVerdict([{ probe: 'x', kind: 'tcp', maxSurvivedMs: null, minFailedMs: 500, flaky: false }], settings);
    expect(none.headline).toMatch(/not safe for this application at any VM size/);
    expect(none.live.status).toBe('unsafe');
  });

  it('custom links, sizes and live pause come from the recorded suite', () => {
    const s = migrationSettings({ migration: { links: { '16Gb FC': 1900 }, memory: [16 * GB], livePause: 300 } });
    expect(s).toEqual({ links: [{ name: '16Gb FC', mbPerSec: 1900 }], memoryBytes: [16 * GB], livePauseMs: 300 });
  });
});

describe('predicted breaking points', () => {
  it('TCP backoff: retransmissions at 0.2, 0.6, 1.4, 3.0, 6.2, 12.6 s …; the kernel gives up after ~15 min', () => {
    expect(retransmissionSchedule(13_000)).toEqual([200, 600, 1400, 3000, 6200, 12_600]);
    expect(kernelGiveUpMs()).toBe(924_600);
    expect(lastDeliveryBefore(5000)).toBe(3000);
  });

  /** the prediction from a probe's own declared facts, its config validated by its own schema */
  const predict = (cfg: Record<string, unknown>) => {
    const def = probeDefinition(cfg.kind as string)!;
    const c = def.schema.parse({ name: cfg.kind, ...cfg });
    return predictBreakingPoint({ name: c.name, kind: c.kind, intervalMs: c.interval, facts: def.facts(c) });
  };

  it('tcp: user timeout, read timeout, none', () => {
    expect(predict({ kind: 'tcp', interval: 100, userTimeout: 3000 }).breakingMs).toBe(3000);
    // a 5 s user timeout still breaks at ~3 s: the next retransmission (6.2 s) is after it
    expect(predict({ kind: 'tcp', interval: 100, userTimeout: 5000 }).breakingMs).toBe(3000);
    expect(predict({ kind: 'tcp', interval: 100, readTimeout: 2000 }).breakingMs).toBe(1400);
    const plain = predict({ kind: 'tcp', interval: 100, keepalive: { idle: 1000, interval: 1000, count: 3 } });
    expect(plain.breakingMs).toBeGreaterThan(600_000);
    expect(plain.basis.join(' ')).toMatch(/keepalive only probes an idle connection/);
  });

  it('every probe kind predicts from its declared facts: postgres, console, sftp, smb, rdp, web, icmp', () => {
    const pg = predict({ kind: 'postgres', interval: 200, statementTimeout: 5000, queryTimeout: 8000, connectionTimeout: 3000, reconnect: 'backoff' });
    expect(pg.breakingMs).toBe(6200);
    expect(pg.basis.join(' ')).toMatch(/statement timeout 5000 ms: the server's clock/);
    expect(pg.basis.join(' ')).toMatch(/reconnect/);
    expect(predict({ kind: 'console', interval: 200, serverAlive: { interval: 1000, countMax: 3 } }).breakingMs).toBe(3000);
    expect(predict({ kind: 'sftp', interval: 200 }).breakingMs).toBeGreaterThan(600_000);
    expect(predict({ kind: 'smb', interval: 200 }).breakingMs).toBe(12_600);
    expect(predict({ kind: 'rdp', interval: 500, autoReconnect: true }).breakingMs).toBe(6200);
    // the web probe's check gives up on a page load or action after checkTimeout (15 s by default): an application timer
    expect(predict({ kind: 'web', interval: 500, journey: './shop.ts' }).breakingMs).toBe(12_600);
    expect(predict({ kind: 'web', interval: 500, journey: './shop.ts', checkTimeout: 4000 }).breakingMs).toBe(3000);
    expect(predict({ kind: 'icmp', interval: 10 }).breakingMs).toBe(Infinity);
    // a log written before facts were recorded: no prediction, said so
    const old = predictBreakingPoint({ name: 'x', kind: 'tcp', intervalMs: 100 });
    expect(old.breakingMs).toBeNull();
    expect(old.mechanism).toMatch(/no client facts/);
  });

  it('disagreement is a finding; agreement within the slack is not', () => {
    const pr = predict({ kind: 'tcp', interval: 100, readTimeout: 2000 });
    expect(checkPrediction(pr, 1000, 2000)).toMatchObject({ agreement: 'agrees', finding: false });
    expect(checkPrediction(pr, 5000, null)).toMatchObject({ agreement: 'survives-longer', finding: true });
    const long = predict({ kind: 'tcp', interval: 100 });
    expect(checkPrediction(long, 2000, 5000)).toMatchObject({ agreement: 'breaks-earlier', finding: true });
    expect(checkPrediction(long, 8000, null)).toMatchObject({ agreement: 'agrees', finding: false });
    expect(checkPrediction(pr, 5000, 1000, true).agreement).toBe('inconclusive');
  });
});
