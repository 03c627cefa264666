/**
 * Allure: `blackout report DIR --allure` writes allure-results/ and builds the
 * Allure HTML with allure-commandline (Java); the report's counts match one
 * test per probe per trial and per expectation.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeRunDir } from '../../src/reporters/index.ts';
import { runCli } from '../helpers/lab.ts';
import { TEST_OUTPUT, fixtureRun } from '../helpers/fixtures.ts';

describe('allure', () => {
  it('blackout report --allure builds the Allure report and its counts match', async () => {
    const dir = fixtureRun('list-run');
    const started = performance.now();
    const r = await runCli(['report', dir, '--allure'], { timeoutMs: 170_000 });
    const ms = performance.now() - started;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/allure-report\/index.html \(Allure, built in [\d.]+ s\)/);
    const { analysis: a } = analyzeRunDir(dir);
    const expected = a.trials.length * a.probeInfo.length + a.expectations.length;
    const summary = JSON.parse(readFileSync(join(dir, 'allure-report', 'widgets', 'summary.json'), 'utf8'));
    expect(summary.statistic.total).toBe(expected);
    // every expectation held: sessions that did not survive are observations (passed), so nothing fails, as the exit code 0 says
    expect(a.exitCode).toBe(0);
    expect(summary.statistic.failed).toBe(0);
    expect(summary.statistic.passed).toBe(expected);
    // grouped by suite → probe
    const suites = JSON.parse(readFileSync(join(dir, 'allure-report', 'data', 'suites.json'), 'utf8'));
    const names = JSON.stringify(suites);
    for (const p of a.probeInfo) expect(names).toContain(`"name":"${p.name}"`);
    expect(existsSync(join(dir, 'allure-report', 'index.html'))).toBe(true);
    mkdirSync(TEST_OUTPUT, { recursive: true });
    writeFileSync(join(TEST_OUTPUT, 'allure-generation.txt'), `allure generate (via blackout report --allure): ${(ms / 1000).toFixed(1)} s for ${expected} tests\n${r.stdout}`);
  });
});
