/**
 * The web probe's journeys, without a browser: what a check's return value
 * means, the declarative steps' schema and patterns, a journey module resolved
 * against the suite file's folder and loaded (TypeScript through tsx), and a
 * probe that knows nothing of the lab app.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSuite } from '../../src/run/suite.ts';
import { web } from '../../src/probes/web.ts';
import { harnessSideFailure, loadJourney, pattern, verdictOf } from '../../src/probes/shared/web-journey.ts';
import { ROOT } from '../helpers/lab.ts';

const dir = mkdtempSync(join(tmpdir(), 'blackout-journey-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('web journeys (no browser)', () => {
  it("reads a check's verdict from what it returns", () => {
    expect(verdictOf(undefined)).toEqual({ kind: 'ok' });
    expect(verdictOf(true)).toEqual({ kind: 'ok' });
    expect(verdictOf(42)).toEqual({ kind: 'ok', value: 42 });
    expect(verdictOf({ value: 7, latencyMs: 12 })).toEqual({ kind: 'ok', value: 7, latencyMs: 12 });
    expect(verdictOf(false)).toMatchObject({ kind: 'stale' });
    expect(verdictOf({ stale: 'no news' })).toEqual({ kind: 'stale', message: 'no news' });
    expect(verdictOf({ lost: 'Reconnecting…' })).toEqual({ kind: 'lost', message: 'Reconnecting…' });
    expect(verdictOf({ failed: 'Please reload' })).toEqual({ kind: 'failed', message: 'Please reload' });
    expect(() => verdictOf('yes' as never)).toThrow(/expected nothing, a boolean, a number/);
    expect(pattern('/Live\\s+data/i')).toEqual(/Live\s+data/i);
    expect(pattern('Live data')).toBe('Live data');
  });

  it("takes Chromium's abort on a change of the machine's own network, and the automation's lost page, for the harness's, not the site's", () => {
    // what page.reload threw in a test run when another lab came up on the machine mid-cut
    expect(harnessSideFailure({ kind: 'failed', message: 'page.reload: net::ERR_NETWORK_CHANGED at http://10.213.3.2:8080/' })).toMatch(/network configuration changed/);
    expect(harnessSideFailure({ kind: 'lost', message: 'net::ERR_NETWORK_CHANGED' })).toMatch(/network configuration changed/);
    // what a declarative reload threw in a test run, through an 8 s pull
    expect(harnessSideFailure({ kind: 'failed', message: 'check[0] (reload): page.reload: Protocol error (Page.reload): Not attached to an active page' })).toMatch(/lost its page/);
    // the target's own silence or refusal is the application's failure
    expect(harnessSideFailure({ kind: 'failed', message: 'page.reload: net::ERR_CONNECTION_TIMED_OUT' })).toBeNull();
    expect(harnessSideFailure({ kind: 'failed', message: 'page.reload: net::ERR_CONNECTION_REFUSED' })).toBeNull();
    expect(harnessSideFailure({ kind: 'failed', message: 'check[0] (reload): page.reload: Timeout 4000ms exceeded.' })).toBeNull();
    expect(harnessSideFailure({ kind: 'stale', message: 'ERR_NETWORK_CHANGED' })).toBeNull();
    expect(harnessSideFailure({ kind: 'ok' })).toBeNull();
  });

  it('validates declarative steps, naming the field; secrets only by name', () => {
    const ok = web.schema.safeParse({
      name: 'w',
      kind: 'web',
      journey: { login: [{ goto: '/login' }, { fill: '#pw', secret: 'password' }], check: [{ reload: true }, { expectText: 'Hi', in: 'h1' }] },
    });
    expect(ok.success).toBe(true);
    expect(web.schema.safeParse({ name: 'w', kind: 'web', journey: { check: [] } }).success).toBe(false);
    expect(web.schema.safeParse({ name: 'w', kind: 'web', journey: { check: [{ fill: '#pw', secret: 'bad name' }] } }).success).toBe(false);
    expect(web.schema.safeParse({ name: 'w', kind: 'web', journey: { check: [{ click: '#x', value: 'y' }] } }).success).toBe(false);
    // a secret is never inline
    expect(web.schema.safeParse({ name: 'w', kind: 'web', journey: 'x.ts', secrets: { apiKey: 'literal' } }).success).toBe(false);
    expect(web.schema.safeParse({ name: 'w', kind: 'web' }).success).toBe(false);
  });

  it("resolves a journey module against the suite file's folder and loads it", async () => {
    writeFileSync(join(dir, 'shop.ts'), 'export async function check(): Promise<number> { return 1; }\n');
    writeFileSync(join(dir, 'suite.yaml'), 'name: s\ntarget: lab\nprobes:\n  - { name: w, kind: web, journey: ./shop.ts }\ninjector: { kind: cable-pull }\nblackouts: [1s]\n');
    const s = await loadSuite(join(dir, 'suite.yaml'));
    const journey = (s.probes[0] as unknown as { journey: string }).journey;
    expect(journey).toBe(join(dir, 'shop.ts'));
    const j = await loadJourney(journey);
    expect(await j.check(null as never, null as never)).toBe(1);
    await expect(loadJourney(join(dir, 'missing.ts'))).rejects.toThrow(/missing\.ts: file not found/);
    writeFileSync(join(dir, 'nocheck.ts'), 'export const x = 1;\n');
    await expect(loadJourney(join(dir, 'nocheck.ts'))).rejects.toThrow(/expected an exported function check\(page, ctx\)/);
  });

  it('the probe knows nothing of the lab app: its hooks live in the example journey only', () => {
    const probe = readFileSync(join(ROOT, 'src/probes/web.ts'), 'utf8') + readFileSync(join(ROOT, 'src/probes/shared/web-journey.ts'), 'utf8');
    for (const labThing of ['__bo', '#user', '#login', "'/app'", 'staleAfter', 'giveUp']) expect(probe, labThing).not.toContain(labThing);
    expect(readFileSync(join(ROOT, 'suites/journeys/lab-app.ts'), 'utf8')).toContain('__bo');
  });
});
