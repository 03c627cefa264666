/**
 * `blackout compare`: several runs side by side (vendor A vs vendor B, quick
 * vs live migration). Pure functions of the runs' analyses: the verdicts, the
 * breaking point of each session in each run, overlaid survival curves, the
 * tolerance matrices side by side, and a short "what differs" list.
 */
import type { Analysis } from '../analysis/analysis.ts';

import { CHART_CSS, PALETTE, esc, survivalChart, laneChart } from './charts.ts';
import { COLORS, lanesOf, maxLength } from './html.ts';
import { matrixMarkdown } from './markdown.ts';
import { lengthLabel, toleranceMatrix } from './matrix.ts';
import { OUTCOME_GLYPH, formatBytes, formatMs, survived } from '../core/format.ts';

export interface ComparedRun {
  label: string;
  analysis: Analysis;
}

/** The differences worth reading first, one sentence each. */
export function whatDiffers(runs: ComparedRun[]): string[] {
  const out: string[] = [];
  if (runs.length < 2) return out;
  const labels = runs.map((r) => r.label);
  // verdicts
  const levels = runs.map((r) => r.analysis.decision.verdict.level);
  if (new Set(levels).size > 1) out.push(`Verdict: ${runs.map((r, i) => `${r.label} ${levels[i]}`).join(' · ')}.`);
  const linkNames = [...new Set(runs.flatMap((r) => r.analysis.decision.migration.overall.map((o) => o.link)))];
  for (const link of linkNames) {
    const v = runs.map((r) => r.analysis.decision.migration.overall.find((o) => o.link === link));
    const sizes = v.map((x) => (x ? `${x.atLeast ? '≥ ' : ''}${formatBytes(x.safeUpToBytes)}` : '–'));
    if (new Set(sizes).size > 1) out.push(`Quick migration on ${link}: safe up to ${runs.map((r, i) => `${sizes[i]} (${r.label})`).join(' vs ')}.`);
  }
  const live = runs.map((r) => r.analysis.decision.migration.live.status);
  if (new Set(live).size > 1) out.push(`Live migration: ${runs.map((r, i) => `${r.label} ${live[i]}`).join(' · ')}.`);
  const injectors = runs.map((r) => r.analysis.injector.kind);
  if (new Set(injectors).size > 1) out.push(`Injectors differ: ${runs.map((r, i) => `${r.label} ${injectors[i]}`).join(', ')}.`);

  // sessions
  const probes = [...new Set(runs.flatMap((r) => r.analysis.probeInfo.map((p) => p.name)))];
  for (const p of probes) {
    const present = runs.filter((r) => r.analysis.probes[p]);
    if (present.length < runs.length) {
      out.push(`${p} is only in ${present.map((r) => r.label).join(', ')}.`);
      continue;
    }
    const ds = runs.map((r) => r.analysis.decision.probes.find((d) => d.probe === p)!);
    // brackets that cannot both hold: one run survived longer than another failed
    for (let i = 0; i < runs.length; i++) {
      for (let j = 0; j < runs.length; j++) {
        if (i === j) continue;
        const a = ds[i]!;
        const b = ds[j]!;
        if (a.maxSurvivedMs !== null && b.minFailedMs !== null && a.maxSurvivedMs > b.minFailedMs * 1.05) {
          out.push(`${p}: survived ${formatMs(a.maxSurvivedMs)} under ${labels[i]} but failed at ${formatMs(b.minFailedMs)} under ${labels[j]}.`);
        }
      }
    }
    // the same requested length, different outcomes
    const byLen = new Map<number, string[]>();
    runs.forEach((r, i) => {
      for (const t of r.analysis.trials) {
        const o = t.probes[p]?.outcome;
        if (!o || o === 'unknown') continue;
        const list = byLen.get(t.requestedMs) ?? runs.map(() => '');
        list[i] = list[i] ? `${list[i]}/${o}` : o;
        byLen.set(t.requestedMs, list);
      }
    });
    for (const [len, outs] of [...byLen.entries()].sort((x, y) => x[0] - y[0])) {
      const known = outs.filter(Boolean);
      if (known.length < 2) continue;
      const surv = known.map((o) => o.split('/').every((o) => survived(o as Parameters<typeof survived>[0])));
      if (new Set(surv).size > 1) out.push(`${p} at ${lengthLabel(len)}: ${runs.map((r, i) => `${outs[i] || '–'} (${r.label})`).join(' vs ')}.`);
    }
    if (ds.some((d) => d.flaky))
      out.push(
        `${p} is flaky under ${runs
          .filter((_, i) => ds[i]!.flaky)
          .map((r) => r.label)
          .join(', ')}.`,
      );
    const pol = runs.map((r) => JSON.stringify(r.analysis.probeInfo.find((x) => x.name === p)?.policy ?? {}));
    if (new Set(pol).size > 1) out.push(`${p}: the client policies differ between runs (${runs.map((r, i) => `${r.label}: ${pol[i]}`).join('; ')}).`);
  }
  return [...new Set(out)];
}

function bracketCell(a: Analysis, probe: string): string {
  const d = a.decision.probes.find((x) => x.probe === probe);
  if (!d) return '–';
  return `${d.maxSurvivedMs === null ? '✗' : `≥ ${formatMs(d.maxSurvivedMs)}`}${d.minFailedMs !== null ? ` · < ${formatMs(d.minFailedMs)}` : ''}${d.flaky ? ' ⚠ flaky' : ''}`;
}

function matrixHtmlSmall(a: Analysis): string {
  const m = toleranceMatrix(a);
  return `<table class="matrix"><tr><th>probe</th>${m.lengths.map((l) => `<th>${esc(lengthLabel(l))}</th>`).join('')}</tr>${m.probes
    .map(
      (p) =>
        `<tr><th>${esc(p)}</th>${m.lengths
          .map((l) => {
            const cs = m.cells[p]?.[l] ?? [];
            if (!cs.length) return '<td class="empty">–</td>';
            const worst = cs.find((c) => c.outcome === 'failed') ?? cs.find((c) => c.outcome === 'recovered') ?? cs.find((c) => c.outcome === 'stalled') ?? cs[0]!;
            return `<td class="cell" data-outcome="${worst.outcome}" style="background:${COLORS[worst.outcome]}" title="${esc(cs.map((c) => `trial ${c.trial}: ${c.outcome}`).join(', '))}">${cs.map((c) => OUTCOME_GLYPH[c.outcome]).join(' ')}${worst.observedOutageMs !== null ? `<small> ${esc(formatMs(worst.observedOutageMs))}</small>` : ''}</td>`;
          })
          .join('')}</tr>`,
    )
    .join('')}</table>`;
}

export function compareHtml(runs: ComparedRun[]): string {
  const differs = whatDiffers(runs);
  const probes = [...new Set(runs.flatMap((r) => r.analysis.probeInfo.map((p) => p.name)))];
  const xMax = Math.max(...runs.map((r) => maxLength(r.analysis)));
  const cards = runs
    .map(
      (r, i) => `<div class="card ${r.analysis.decision.verdict.level}" data-run="${esc(r.label)}"><div class="run" style="border-color:${PALETTE[i % PALETTE.length]}">${esc(r.label)}</div>
<div class="small">${esc(r.analysis.suite)} · ${esc(r.analysis.injector.kind)} · ${r.analysis.trials.length} trial(s)${r.analysis.complete ? '' : ' · incomplete'}</div>
<p class="headline">${esc(r.analysis.decision.verdict.headline)}</p><p class="small">${esc(r.analysis.decision.verdict.second)}</p></div>`,
    )
    .join('');
  const table = `<table class="bp"><tr><th>session</th>${runs.map((r) => `<th>${esc(r.label)}</th>`).join('')}</tr>${probes.map((p) => `<tr><th>${esc(p)}</th>${runs.map((r) => `<td>${esc(bracketCell(r.analysis, p))}</td>`).join('')}</tr>`).join('')}</table>`;
  const links = [...new Set(runs.flatMap((r) => r.analysis.decision.migration.overall.map((o) => o.link)))];
  const mig = `<table class="bp"><tr><th>quick migration safe up to</th>${runs.map((r) => `<th>${esc(r.label)}</th>`).join('')}</tr>${links
    .map(
      (l) =>
        `<tr><th>${esc(l)}</th>${runs
          .map((r) => {
            const o = r.analysis.decision.migration.overall.find((x) => x.link === l);
            return `<td class="num">${o ? `${o.atLeast ? '≥ ' : ''}${esc(formatBytes(o.safeUpToBytes))}` : '–'}</td>`;
          })
          .join('')}</tr>`,
    )
    .join('')}</table>`;
  const curves = survivalChart(
    runs.map((r, i) => ({ name: r.label, color: PALETTE[i % PALETTE.length]!, probes: r.analysis.decision.probes.map((p) => ({ lo: p.maxSurvivedMs, hi: p.minFailedMs })) })),
    xMax,
  );
  const lanes = laneChart(
    probes.flatMap((p) =>
      runs.flatMap((r) =>
        lanesOf(r.analysis)
          .filter((l) => l.name === p)
          .map((l) => ({ ...l, name: `${p}`, sub: r.label })),
      ),
    ),
    xMax,
    'lanes-compare',
  );
  const matrices = runs.map((r) => `<div class="col"><h3>${esc(r.label)}</h3>${matrixHtmlSmall(r.analysis)}</div>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>blackout comparison: ${esc(runs.map((r) => r.label).join(' vs '))}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#1d2129;padding:0 16px}
h1{font-size:22px;margin:0 0 8px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #e3e6ea;padding-bottom:4px} h3{font-size:15px;margin:6px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px}
.card{border:1px solid #e3e6ea;border-radius:8px;padding:10px 14px} .card.safe{background:#e3f4e9} .card.limited{background:#fff4d6} .card.unsafe{background:#fbe5e7}
.run{font-weight:700;font-size:16px;border-left:5px solid;padding-left:8px} .small{font-size:12px;color:#555} .headline{font-weight:600}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #e3e6ea;padding:4px 8px;text-align:left;vertical-align:top} td.num{text-align:right}
.cols{display:flex;gap:16px;flex-wrap:wrap} .col{overflow-x:auto}
.matrix td.cell{color:#fff;text-align:center;min-width:56px} .matrix td.cell small{opacity:.85}
ul.differs li{margin:3px 0}
${CHART_CSS}
</style></head><body>
<h1>blackout comparison: ${esc(runs.map((r) => r.label).join(' vs '))}</h1>
<h2 id="verdicts">Verdicts</h2>
<div class="cards">${cards}</div>
<h2 id="differs">What differs</h2>
${differs.length ? `<ul class="differs">${differs.map((d) => `<li>${esc(d)}</li>`).join('')}</ul>` : '<p>No difference in verdicts, breaking points or outcomes.</p>'}
<h2 id="breaking-points">Breaking points</h2>
<p class="small">≥ survived that long · &lt; failed at that length.</p>
${table}
${mig}
<h2 id="survival">Survival curves</h2>
${curves}
${lanes}
<h2 id="matrices">Tolerance matrices</h2>
<div class="cols">${matrices}</div>
</body></html>
`;
}

export function compareMarkdown(runs: ComparedRun[]): string {
  const lines: string[] = [`# blackout comparison: ${runs.map((r) => r.label).join(' vs ')}`, '', '## Verdicts', ''];
  lines.push('| run | suite | injector | verdict | live migration |', '|---|---|---|---|---|');
  for (const r of runs)
    lines.push(`| ${r.label} | ${r.analysis.suite} | ${r.analysis.injector.kind} | ${r.analysis.decision.verdict.headline.replace(/\|/g, '\\|')} | ${r.analysis.decision.migration.live.status} |`);
  lines.push('', '## What differs', '');
  const d = whatDiffers(runs);
  lines.push(...(d.length ? d.map((x) => `- ${x}`) : ['No difference in verdicts, breaking points or outcomes.']));
  const probes = [...new Set(runs.flatMap((r) => r.analysis.probeInfo.map((p) => p.name)))];
  lines.push('', '## Breaking points', '', `| session | ${runs.map((r) => r.label).join(' | ')} |`, `|---|${runs.map(() => '---').join('|')}|`);
  for (const p of probes) lines.push(`| ${p} | ${runs.map((r) => bracketCell(r.analysis, p)).join(' | ')} |`);
  for (const r of runs) lines.push('', `## ${r.label}: tolerance matrix`, '', matrixMarkdown(r.analysis));
  return lines.join('\n') + '\n';
}
