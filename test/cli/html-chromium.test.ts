/**
 * report.html in real Chromium (Debian's, driven by playwright-core): it loads
 * offline with no console error, every chart rendered marks, the key numbers
 * are on the page; a full-page screenshot is kept in reports/test-output/.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeReports } from '../../src/reporters/index.ts';
import { compareHtml } from '../../src/reporters/compare.ts';
import { analyzeRunDir } from '../../src/reporters/index.ts';
import { withBrowser } from '../helpers/browser.ts';
import { TEST_OUTPUT, fixtureRun } from '../helpers/fixtures.ts';
import { writeFileSync } from 'node:fs';
import { formatMs } from '../../src/core/format.ts';

describe('report.html in Chromium', () => {
  it('loads with no console error, renders every chart and shows the key numbers', async () => {
    const dir = fixtureRun('list-run');
    const { analysis: a } = await writeReports(dir);
    mkdirSync(TEST_OUTPUT, { recursive: true });
    await withBrowser(async (ctx) => {
      const page = await ctx.newPage();
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(String(e)));
      page.on('request', (r) => !r.url().startsWith('file:') && !r.url().startsWith('data:') && problems.push(`request ${r.url()}`));
      await page.goto(`file://${join(dir, 'report.html')}`, { waitUntil: 'load' });

      // the verdict comes first
      const first = await page.locator('h1 + .meta + section').getAttribute('id');
      expect(first).toBe('verdict');
      expect(await page.locator('#verdict .headline').innerText()).toContain(a.decision.verdict.headline.slice(0, 40));

      // every chart drew data marks with a real size
      const charts = await page
        .locator('svg[data-chart]')
        .evaluateAll((svgs) =>
          svgs.map((s) => ({ chart: s.getAttribute('data-chart'), marks: s.querySelectorAll('.mark').length, w: s.getBoundingClientRect().width, h: s.getBoundingClientRect().height })),
        );
      const kinds = charts.map((c) => c.chart);
      expect(kinds).toEqual(expect.arrayContaining(['lanes', 'survival', 'outage', 'recovery', 'timeline-0', 'timeline-3']));
      for (const c of charts) {
        expect(c.marks, `${c.chart} has no marks`).toBeGreaterThan(0);
        expect(c.w).toBeGreaterThan(100);
        expect(c.h).toBeGreaterThan(30);
      }
      // heatmap cells coloured by outcome, the screenshot decoded
      expect(await page.locator('#tolerance-matrix td[data-outcome="failed"]').count()).toBeGreaterThan(0);
      expect(await page.locator(`#tolerance-matrix td[data-outcome="recovered"]`).count()).toBe(1);
      expect(await page.locator('.shots img').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);

      // key numbers
      const text = await page.locator('body').innerText();
      const legacy = a.decision.probes.find((p) => p.probe === 'legacy')!;
      expect(text).toContain(formatMs(legacy.maxSurvivedMs));
      expect(await page.locator('.keynums tr[data-probe="legacy"] .ag').innerText()).toBe('survives-longer');
      expect(await page.locator('.keynums tr[data-probe="console"] .fails').innerText()).toBe(formatMs(a.probes.console!.minFailedMs));
      expect(text).toMatch(/flappy is flaky/);
      expect(text).toMatch(/Live migration \(pause ≤ 300 ms\): safe/);
      expect(await page.locator('#migration-table td.mig').count()).toBe(6);

      await page.screenshot({ path: join(TEST_OUTPUT, 'report-html.png'), fullPage: true });
      await page.screenshot({ path: join(dir, 'report.png'), fullPage: true });
      expect(problems).toEqual([]);
    });
  });

  it('compare.html loads clean with overlaid survival curves', async () => {
    const runs = [
      { label: 'A', analysis: analyzeRunDir(fixtureRun('search-run')).analysis },
      { label: 'B', analysis: analyzeRunDir(fixtureRun('list-run')).analysis },
    ];
    const file = join(fixtureRun('search-run'), 'compare.html');
    writeFileSync(file, compareHtml(runs));
    await withBrowser(async (ctx) => {
      const page = await ctx.newPage();
      const problems: string[] = [];
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(String(e)));
      await page.goto(`file://${file}`);
      expect(await page.locator('svg[data-chart="survival"] path.mark').count()).toBe(4);
      expect(await page.locator('.card').count()).toBe(2);
      await page.screenshot({ path: join(TEST_OUTPUT, 'compare-html.png'), fullPage: true });
      expect(problems).toEqual([]);
    });
  });
});
