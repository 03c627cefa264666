/**
 * report.html: one self-contained file (inline CSS and SVG, images as data:
 * URIs, no script, no CDN) that opens offline. The verdict first, then the
 * evidence: breaking points against each probe's policy, the migration table
 * by VM size and link, the tolerance matrix as a heatmap, survival curves,
 * observed outage and recovery time against blackout length, the search log,
 * per-trial timelines with the blackout band, errors, screenshots, policies.
 */
import type { Analysis, ProbeTrialResult, TrialResult } from '../analysis/analysis.ts';
import { testsSummaryText } from '../analysis/test-cases.ts';
import { hypervisorFigures } from './hypervisor-figures.ts';

import type { Outcome } from '../core/events.ts';
import { toleranceMatrix, lengthLabel } from './matrix.ts';
import { CHART_CSS, PALETTE, esc, laneChartChunks, survivalChart, xyChartChunks, type Lane, type XYSeries } from './charts.ts';
import { OUTCOME_GLYPH, formatBytes, formatMs, survived } from '../core/format.ts';
import { joinChunks } from './chunks.ts';

export { esc };

export interface Assets {
  /** attachment path → data: URI */
  images: Map<string, string>;
}

/** symbols every font has (the terminal's ⏸ is missing from many) */

export const COLORS: Record<Outcome, string> = {
  transparent: '#2e9d57',
  stalled: '#d9a400',
  recovered: '#e07b1f',
  failed: '#c8323c',
  unknown: '#8a8f98',
};

const policyText = (p: Record<string, unknown>): string =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');

/** the tolerance matrix, a row (a probe) at a time */
function* matrixHtml(a: Analysis): Generator<string> {
  const m = toleranceMatrix(a);
  yield `<div class="scroll"><table class="matrix" id="tolerance-matrix"><tr><th>probe</th>${m.lengths.map((l) => `<th>${esc(lengthLabel(l))}</th>`).join('')}<th>survives up to</th><th>fails from</th></tr>`;
  for (const [i, p] of m.probes.entries()) {
    const pr = a.probes[p]!;
    const cells = m.lengths
      .map((l) => {
        const cs = m.cells[p]?.[l] ?? [];
        if (!cs.length) return '<td class="empty">–</td>';
        const worst = cs.find((c) => c.outcome === 'failed') ?? cs.find((c) => c.outcome === 'recovered') ?? cs.find((c) => c.outcome === 'stalled') ?? cs[0]!;
        return `<td class="cell" data-outcome="${worst.outcome}" style="background:${COLORS[worst.outcome]}" title="${esc(cs.map((c) => `trial ${c.trial}: ${c.outcome}`).join(', '))}">${cs
          .map((c) => `<div>${OUTCOME_GLYPH[c.outcome]} ${c.outcome}${c.observedOutageMs !== null ? `<small> ${esc(formatMs(c.observedOutageMs))}</small>` : ''}</div>`)
          .join('')}</td>`;
      })
      .join('');
    yield `${i ? '\n' : ''}<tr><th class="probe">${esc(p)} <small>${esc(pr.kind)}</small></th>${cells}<td class="num">${esc(formatMs(pr.maxSurvivedMs))}</td><td class="num">${esc(formatMs(pr.minFailedMs))}</td></tr>`;
  }
  yield '</table></div>';
}

export function timelineSvg(a: Pick<Analysis, 'probeInfo'>, t: TrialResult): string {
  const inj = t.injected;
  if (!inj) return '<p class="note">No blackout was injected in this trial.</p>';
  const names = a.probeInfo.map((p) => p.name);
  const allSeg = names.flatMap((n) => t.probes[n]?.segments ?? []);
  const from = Math.max(t.startedAt, inj.cutAt - 2000);
  const to = Math.max(t.endedAt ?? 0, inj.restoredAt + 1000, ...allSeg.map((s) => s[1]));
  const W = 900;
  const left = 150;
  const right = 80; // room for the outcome label
  const rowH = 26;
  const H = 30 + names.length * rowH + 24;
  const x = (v: number) => left + ((Math.min(Math.max(v, from), to) - from) / (to - from)) * (W - left - right);
  const parts: string[] = [];
  parts.push(
    `<rect x="${x(inj.cutAt).toFixed(1)}" y="18" width="${Math.max(1, x(inj.restoredAt) - x(inj.cutAt)).toFixed(1)}" height="${names.length * rowH + 6}" class="band mark"><title>blackout ${formatMs(inj.durationMs)}</title></rect>`,
  );
  parts.push(`<text x="${x(inj.cutAt).toFixed(1)}" y="13" class="lbl">cut</text><text x="${x(inj.restoredAt).toFixed(1)}" y="13" class="lbl">restore (${esc(formatMs(inj.durationMs))})</text>`);
  names.forEach((n, i) => {
    const r = t.probes[n];
    const y = 24 + i * rowH;
    parts.push(`<text x="4" y="${y + 14}" class="name">${esc(n)}</text>`);
    if (!r) return;
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y + 10}" y2="${y + 10}" class="axis"/>`);
    for (const [s, e] of r.segments) {
      if (e < from || s > to) continue;
      parts.push(`<rect x="${x(s).toFixed(1)}" y="${y + 3}" width="${Math.max(1.5, x(e) - x(s)).toFixed(1)}" height="14" class="ok mark"/>`);
    }
    for (const e of r.errors) {
      parts.push(`<path d="M${x(e.t).toFixed(1)} ${y} l4 0 l-4 20 z" class="${e.fatal ? 'err' : 'warn'}"><title>${esc(formatMs(e.t - inj.cutAt))} after cut: ${esc(e.message)}</title></path>`);
    }
    parts.push(`<text x="${W - 8}" y="${y + 14}" text-anchor="end" class="oc" fill="${COLORS[r.outcome]}">${esc(r.outcome)}</text>`);
  });
  const span = to - from;
  const step = span > 120_000 ? 20_000 : span > 60_000 ? 10_000 : span > 20_000 ? 5000 : 1000;
  for (let v = Math.ceil((from - inj.cutAt) / step) * step; inj.cutAt + v <= to; v += step) {
    const px = x(inj.cutAt + v);
    parts.push(
      `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${H - 22}" y2="${H - 18}" class="axis"/><text x="${px.toFixed(1)}" y="${H - 6}" text-anchor="middle" class="tick">${v / 1000}s</text>`,
    );
  }
  return `<svg class="timeline" data-chart="timeline-${t.index}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="timeline of trial ${t.index}">${parts.join('')}</svg>`;
}

function trialHtml(a: Analysis, t: TrialResult, assets: Assets): string {
  const rows = Object.entries(t.probes)
    .map(
      ([n, r]) =>
        `<tr><td>${esc(n)}</td><td><span class="pill" style="background:${COLORS[r.outcome]}">${esc(r.outcome)}</span></td><td class="num">${esc(formatMs(r.observedOutageMs))}</td><td class="num">${esc(formatMs(r.recoveryMs))}</td><td class="num">${esc(formatMs(r.effectiveIntervalMs))}</td><td>${esc(r.reason)}${
          r.errors.length
            ? `<details><summary>${r.errors.length + r.errorsDropped} error(s)</summary><pre>${esc(r.errors.map((e) => `${formatMs(e.t - (t.injected?.cutAt ?? 0))} after cut${e.fatal ? ' [fatal]' : ''}: ${e.message}${e.code ? ` (${e.code})` : ''}`).join('\n'))}${r.errorsDropped ? `\n… and ${r.errorsDropped} more` : ''}</pre></details>`
            : ''
        }</td></tr>`,
    )
    .join('');
  const shots = a.attachments
    .filter((x) => x.trial === t.index && x.contentType.startsWith('image/'))
    .map((x) => {
      const src = assets.images.get(x.path);
      return src
        ? `<figure><img src="${esc(src)}" alt="${esc(x.name)}" width="320"><figcaption>${esc(x.probe ?? '')} ${esc(x.name)}</figcaption></figure>`
        : `<figure class="missing"><figcaption>${esc(x.probe ?? '')} ${esc(x.name)}: ${esc(x.path)} (not embedded)</figcaption></figure>`;
    })
    .join('');
  const figures = hypervisorFigures(t);
  const side = figures.length
    ? `<table class="results hv"><tr><th>the hypervisor's own figure</th><th></th><th>measured by blackout</th><th></th></tr>${Array.from(
        { length: Math.max(...(['hypervisor', 'harness'] as const).map((src) => figures.filter((f) => f.source === src).length)) },
        (_, i) => {
          const hv = figures.filter((f) => f.source === 'hypervisor')[i];
          const hm = figures.filter((f) => f.source === 'harness')[i];
          return `<tr><td>${hv ? esc(hv.label) : ''}</td><td>${hv ? esc(formatMs(hv.ms)) : ''}</td><td>${hm ? esc(hm.label) : ''}</td><td>${hm ? esc(formatMs(hm.ms)) : ''}</td></tr>`;
        },
      ).join('')}</table>`
    : '';
  const info = t.injectorInfo.length ? `${side}<details><summary>injector figures</summary><pre>${esc(JSON.stringify(t.injectorInfo, null, 2))}</pre></details>` : '';
  return `<section class="trial" id="trial-${t.index}"><h3>Trial ${t.index}: ${esc(lengthLabel(t.requestedMs))} requested, ${esc(formatMs(t.injected?.durationMs))} injected${t.complete ? '' : ' <span class="warnText">(incomplete)</span>'}</h3>
${t.reason ? `<p class="reason">${esc(t.reason)}</p>` : ''}
${timelineSvg(a, t)}
<table class="results"><tr><th>probe</th><th>outcome</th><th>observed outage</th><th>recovery</th><th>interval</th><th>why</th></tr>${rows}</table>${info}${shots ? `<div class="shots">${shots}</div>` : ''}</section>`;
}

/** lanes for the breaking-point chart */
export function lanesOf(a: Analysis): Lane[] {
  return a.decision.probes.map((p) => ({
    name: p.probe,
    sub: p.kind,
    lo: p.maxSurvivedMs,
    hi: p.minFailedMs,
    flaky: p.flaky,
    points: a.trials.flatMap((t) => {
      const r = t.probes[p.probe];
      if (!r || !t.injected || r.outcome === 'unknown') return [];
      return [{ ms: t.injected.durationMs, survived: survived(r.outcome), trial: t.index }];
    }),
    predicted: p.prediction.breakingMs !== null && p.prediction.range ? { ms: p.prediction.breakingMs, range: p.prediction.range } : null,
  }));
}

export function maxLength(a: Analysis): number {
  return Math.max(1000, ...a.trials.map((t) => t.injected?.durationMs ?? t.requestedMs));
}

/** a point of the outage and recovery charts: its tooltip is made when its mark is written */
interface TrialPoint {
  x: number;
  y: number;
  trial: number;
  r: ProbeTrialResult;
}

/** one series per probe: `y` of each trial with an injected window where it is known */
function trialSeries(a: Analysis, y: (r: ProbeTrialResult) => number | null, labelOf: (p: TrialPoint) => string): Array<XYSeries<TrialPoint>> {
  const names = a.probeInfo.map((p) => p.name);
  return names.map((n, i) => ({
    name: n,
    color: PALETTE[i % PALETTE.length]!,
    points: a.trials.flatMap((t) => {
      const r = t.probes[n];
      const v = r ? y(r) : null;
      return t.injected && r && v !== null ? [{ x: t.injected.durationMs, y: v, trial: t.index, r }] : [];
    }),
    labelOf,
  }));
}

/** the charts, in pieces (a lane or a series each): a long run's have a mark per probe per trial (15 150 in 303 trials of 50 probes) */
function* chartsHtml(a: Analysis): Generator<string> {
  const xMax = maxLength(a);
  yield `<h2 id="breaking-points">Breaking point per session</h2>
`;
  yield* laneChartChunks(
    lanesOf(a),
    Math.max(xMax, ...a.decision.probes.map((p) => (p.prediction.breakingMs !== null && Number.isFinite(p.prediction.breakingMs) && p.prediction.breakingMs < 3 * xMax ? p.prediction.breakingMs : 0))),
  );
  yield `
<h2 id="survival">Survival curve</h2>
${survivalChart([{ name: a.suite, color: PALETTE[0]!, probes: a.decision.probes.map((p) => ({ lo: p.maxSurvivedMs, hi: p.minFailedMs })) }], xMax)}
<h2 id="outage">Observed outage vs blackout length</h2>
`;
  yield* xyChartChunks(
    'outage',
    trialSeries(
      a,
      (r) => r.observedOutageMs,
      ({ x, trial, r }) => `trial ${trial}: ${formatMs(x)} blackout → ${formatMs(r.observedOutageMs)} seen (${r.outcome})`,
    ),
    {
      xLabel: 'injected blackout',
      yLabel: 'outage the session saw',
      diagonal: true,
      title: 'observed outage vs injected blackout',
      caption: 'Above the diagonal: the session saw a longer outage than the blackout (TCP waits out its retransmission backoff after the restore).',
    },
  );
  yield `
<h2 id="recovery">Recovery time vs blackout length</h2>
`;
  yield* xyChartChunks(
    'recovery',
    trialSeries(
      a,
      (r) => r.recoveryMs,
      ({ x, trial, r }) => `trial ${trial}: ${formatMs(x)} blackout → back ${formatMs(r.recoveryMs)} after the restore (${r.outcome})`,
    ),
    { xLabel: 'injected blackout', yLabel: 'restore → first good answer', title: 'recovery time vs blackout length', caption: 'How long after the restore each session answered again.' },
  );
}

function verdictHtml(a: Analysis): string {
  const d = a.decision;
  const run = !a.complete
    ? ['incomplete', 'Incomplete run: the report shows what was recorded']
    : a.passed
      ? ['pass', 'Run passed: every expectation held']
      : [
          'fail',
          a.tests.counts.errors
            ? `Run ended: ${a.endReason ?? ''}`
            : a.tests.counts.strict && a.expectations.every((e) => e.passed)
              ? 'Run failed (strict): a session did not survive'
              : 'Run failed: an expectation did not hold',
        ];
  const expectations = a.expectations.map((e) => `<li class="${e.passed ? 'ok' : 'bad'}">${esc(e.message)}</li>`).join('');
  const level = d.verdict.level;
  return `<section class="verdict-box ${level}" id="verdict">
<div class="vlabel">Verdict</div>
<p class="headline">${esc(d.verdict.headline)}</p>
<p class="live ${a.injector.migration === 'live' ? 'na' : d.migration.live.status}" id="live-verdict">${esc(d.verdict.second)}</p>
${d.migration.caveats.length ? `<ul class="caveats">${d.migration.caveats.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>` : ''}
<div class="runstate ${run[0]}">${esc(run[1]!)}</div>
<p class="tests" id="tests">${esc(testsSummaryText(a.tests.counts, a.exitCode))}</p>
${expectations ? `<ul class="expectations">${expectations}</ul>` : ''}
</section>`;
}

function keyNumbersHtml(a: Analysis): string {
  const rows = a.decision.probes
    .map((p) => {
      const pr = p.prediction;
      const pred = pr.breakingMs === null ? 'no prediction' : Number.isFinite(pr.breakingMs) ? `~${formatMs(pr.breakingMs)}` : 'never (no session)';
      const ag = p.check.agreement;
      return `<tr data-probe="${esc(p.probe)}"><th>${esc(p.probe)} <small>${esc(p.kind)}</small></th><td class="num survives">${esc(formatMs(p.maxSurvivedMs))}</td><td class="num fails">${esc(formatMs(p.minFailedMs))}</td><td>${esc(p.status)}${p.flaky ? ' ⚠' : ''}</td><td class="num">${esc(pred)}</td><td><span class="ag ${ag}">${esc(ag)}</span></td><td class="why">${esc(pr.mechanism)}</td></tr>`;
    })
    .join('');
  const s = a.decision.search;
  const searchLine = s
    ? `<p class="meta" id="search-summary">${s.mode === 'search' ? `Adaptive search: ${s.trials} trial(s)${s.linearTrials !== null ? ` (a linear sweep at the same resolution: ${s.linearTrials})` : ''}. ` : `List sweep: ${s.trials} trial(s). `}${esc(s.stopReason)}.</p>`
    : '';
  return `<h2 id="key-numbers">Breaking points: observed vs predicted from each client's policy</h2>${searchLine}
<table class="keynums"><tr><th>session</th><th>survived up to</th><th>failed from</th><th>status</th><th>predicted</th><th>agreement</th><th>deciding mechanism</th></tr>${rows}</table>`;
}

function findingsHtml(a: Analysis): string {
  const f = a.decision.findings;
  if (!f.length) return '<h2 id="findings">Findings</h2><p class="note">None: every session broke where its policy says it should, and the harness ran cleanly.</p>';
  return `<h2 id="findings">Findings</h2><ul class="findings">${f.map((x) => `<li class="${x.severity}"><b>${x.severity}</b> ${esc(x.text)}${x.trials?.length ? ` <span class="trials">(trials ${x.trials.map((i) => `<a href="#trial-${i}">${i}</a>`).join(', ')})</span>` : ''}</li>`).join('')}</ul>`;
}

function migrationHtml(a: Analysis): string {
  const m = a.decision.migration;
  const head = `<tr><th>VM memory</th>${m.settings.links.map((l) => `<th>${esc(l.name)}<br><small>${l.mbPerSec} MB/s</small></th>`).join('')}</tr>`;
  const rows = m.table
    .map(
      (r) =>
        `<tr><th>${esc(formatBytes(r.memoryBytes))}</th>${r.cells.map((c) => `<td class="mig ${c.status}" title="model downtime ${esc(formatMs(c.downtimeMs))}">${c.status === 'safe' ? '✓' : c.status === 'unsafe' ? '✗' : '?'} ${esc(formatMs(c.downtimeMs))}</td>`).join('')}</tr>`,
    )
    .join('');
  const per = m.perProbe
    .map(
      (p) =>
        `<tr><th>${esc(p.probe)} <small>${esc(p.kind)}</small></th><td class="num">${esc(formatMs(p.toleranceMs))}</td>${p.links.map((l) => `<td class="num">${l.safeUpToBytes > 0 ? `${l.atLeast ? '≥ ' : ''}${esc(formatBytes(l.safeUpToBytes))}` : '–'}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<h2 id="migration">Quick migration by VM size and storage link</h2>
<p class="note">Model: downtime ≈ 2 × VM memory / link throughput (save, then restore). ✓ every session survived a blackout at least that long; ✗ some session failed at that length or shorter; ? between what was seen to survive and what was seen to fail.</p>
<table class="migration" id="migration-table">${head}${rows}</table>
<h3>Largest VM each session tolerates</h3>
<table class="migration-per"><tr><th>session</th><th>survived up to</th>${m.settings.links.map((l) => `<th>${esc(l.name)}</th>`).join('')}</tr>${per}</table>`;
}

/** the search log, a row (a trial) at a time; nothing for a list of lengths */
function* searchLogHtml(a: Analysis): Generator<string> {
  if (!a.trials.some((t) => t.reason)) return;
  yield `<h2 id="sweep">Why each length</h2><table class="sweep"><tr><th>trial</th><th>length</th><th>why this length</th><th>outcomes</th></tr>`;
  for (const t of a.trials) {
    const outcomes = Object.entries(t.probes)
      .map(([n, r]) => `<span class="pill" style="background:${COLORS[r.outcome]}" title="${esc(r.reason)}">${esc(n)} ${OUTCOME_GLYPH[r.outcome]}</span>`)
      .join(' ');
    yield `<tr><td><a href="#trial-${t.index}">${t.index}</a></td><td class="num">${esc(lengthLabel(t.requestedMs))}</td><td>${esc(t.reason ?? '')}</td><td>${outcomes}</td></tr>`;
  }
  yield '</table>';
}

export function htmlReport(a: Analysis, assets: Assets = { images: new Map() }): string {
  return joinChunks(htmlReportChunks(a, assets));
}

/** report.html in pieces: a trial at a time (reporters/chunks.ts) */
export function* htmlReportChunks(a: Analysis, assets: Assets = { images: new Map() }): Generator<string> {
  const policies = a.probeInfo
    .map((p) => {
      const d = a.decision.probes.find((x) => x.probe === p.name);
      return `<tr><td>${esc(p.name)}</td><td>${esc(p.kind)}</td><td>${esc(formatMs(p.intervalMs))}</td><td>${esc(formatMs(p.toleranceMs))}</td><td><code>${esc(policyText(p.policy))}</code>${d?.prediction.basis.length ? `<ul class="basis">${d.prediction.basis.map((b) => `<li>${esc(b)}</li>`).join('')}</ul>` : ''}</td></tr>`;
    })
    .join('');
  yield `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>blackout: ${esc(a.suite)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1040px;color:#1d2129;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #e3e6ea;padding-bottom:4px} h3{font-size:15px}
.verdict-box{border-radius:8px;padding:14px 18px;margin:14px 0;border:1px solid #e3e6ea}
.verdict-box.safe{background:#e3f4e9} .verdict-box.limited{background:#fff4d6} .verdict-box.unsafe{background:#fbe5e7} .verdict-box.no-data{background:#f1f2f4}
.vlabel{font-size:11px;text-transform:uppercase;letter-spacing:.08em;color:#555} .headline{font-size:18px;font-weight:600;margin:4px 0 8px}
.live{margin:4px 0} .live.safe::before{content:"✓ ";color:#1c6b3a;font-weight:700} .live.unsafe::before{content:"✗ ";color:#8d1c25;font-weight:700} .live.unproven::before{content:"? ";color:#7a5a00;font-weight:700}
.runstate{font-weight:600;margin-top:8px} .runstate.pass{color:#1c6b3a} .runstate.fail{color:#8d1c25} .runstate.incomplete{color:#7a5a00}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #e3e6ea;padding:4px 8px;text-align:left;vertical-align:top} td.num{text-align:right;white-space:nowrap}
.scroll{overflow-x:auto}
.matrix td.cell{color:#fff;text-align:center;min-width:80px} .matrix td.cell small{opacity:.85} th small{color:#777;font-weight:normal}
.pill{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;white-space:nowrap}
.ag{border-radius:10px;padding:1px 8px;font-size:12px} .ag.agrees{background:#e3f4e9} .ag.breaks-earlier,.ag.survives-longer{background:#fbe5e7;font-weight:600} .ag.inconclusive,.ag.no-prediction{background:#f1f2f4}
td.why{font-size:12px;color:#444;max-width:420px}
.mig.safe{background:#d7f0df} .mig.unsafe{background:#f7d4d7} .mig.unproven{background:#f4f5f7;color:#666}
.timeline{max-width:100%;height:auto;background:#fafbfc;border:1px solid #e3e6ea;border-radius:4px}
.band{fill:#c8323c;fill-opacity:.13;stroke:#c8323c;stroke-opacity:.5} .ok{fill:#2e9d57} .err{fill:#c8323c} .warn{fill:#d9a400}
.axis{stroke:#c9ced6} .lbl,.tick{font-size:10px;fill:#555} .name{font-size:12px;fill:#1d2129} .oc{font-size:11px;font-weight:600}
li.ok::marker{content:"✓ ";color:#1c6b3a} li.bad::marker{content:"✗ ";color:#8d1c25} .note,.meta{color:#666} .warnText{color:#b07000} .reason{color:#444;font-style:italic;margin:0 0 6px}
.findings li{margin:4px 0} .findings li.problem b{color:#8d1c25} .findings li.warning b{color:#7a5a00} .findings li.info b{color:#555}
.basis{margin:4px 0 0 0;padding-left:18px;font-size:12px;color:#555}
.shots{display:flex;gap:12px;flex-wrap:wrap} figure{margin:0} pre{white-space:pre-wrap;font-size:12px}
${CHART_CSS}
</style></head><body>
<h1>blackout: ${esc(a.suite)}</h1>
<div class="meta">target ${esc(a.target.name)} (${esc(a.target.address)}) · injector <code>${esc(a.injector.kind)}</code> · ${a.trials.length} trial(s) · ${esc(new Date(a.startedWallMs).toISOString())} · host ${esc(a.host)} · blackout ${esc(a.version)}</div>
${verdictHtml(a)}
${keyNumbersHtml(a)}
${findingsHtml(a)}
${migrationHtml(a)}
<h2 id="matrix">Tolerance matrix</h2>
<p class="note">Outcome per probe and blackout length, with the outage the session itself saw (it is longer than the blackout: TCP waits out its retransmission backoff).</p>
`;
  yield* matrixHtml(a);
  yield '\n';
  yield* chartsHtml(a);
  yield '\n';
  yield* searchLogHtml(a);
  yield `
<h2 id="trials">Trials</h2>
`;
  for (const [i, t] of a.trials.entries()) yield (i ? '\n' : '') + trialHtml(a, t, assets);
  yield `
<h2 id="policies">Probe policies</h2>
<table><tr><th>probe</th><th>kind</th><th>interval</th><th>tolerance</th><th>policy</th></tr>${policies}</table>
${a.heal.length ? `<h2>Healed before the run</h2><ul>${a.heal.map((h) => `<li>${esc(h)}</li>`).join('')}</ul>` : ''}
${a.endReason ? `<p class="meta">End: ${esc(a.endReason)}</p>` : ''}
</body></html>
`;
}
