/**
 * report.html: one self-contained file (inline CSS and SVG, no script, no
 * CDN) that opens offline: the verdict, the tolerance matrix, per trial a
 * timeline with the blackout band and each probe's steady spans, gaps, errors
 * and lost sessions, each probe's policy, and attachments (screenshots).
 */
import type { Analysis, TrialResult } from '../analysis.ts';
import { formatMs } from '../clock.ts';
import { toleranceMatrix, lengthLabel, OUTCOME_SYMBOL } from './matrix.ts';
import type { Outcome } from '../events.ts';

export const esc = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);

const COLORS: Record<Outcome, string> = {
  transparent: '#2e9d57',
  stalled: '#d9a400',
  recovered: '#e07b1f',
  failed: '#c8323c',
  unknown: '#8a8f98',
};

function matrixHtml(a: Analysis): string {
  const m = toleranceMatrix(a);
  const head = `<tr><th>probe</th>${m.lengths.map((l) => `<th>${esc(lengthLabel(l))}</th>`).join('')}<th>survives up to</th><th>fails from</th></tr>`;
  const rows = m.probes
    .map((p) => {
      const pr = a.probes[p]!;
      const cells = m.lengths
        .map((l) => {
          const cs = m.cells[p]?.[l] ?? [];
          if (!cs.length) return '<td class="empty">–</td>';
          const worst = cs.find((c) => c.outcome === 'failed') ?? cs.find((c) => c.outcome === 'recovered') ?? cs.find((c) => c.outcome === 'stalled') ?? cs[0]!;
          return `<td class="cell" style="background:${COLORS[worst.outcome]}" title="${esc(cs.map((c) => `trial ${c.trial}: ${c.outcome}`).join(', '))}">${cs
            .map((c) => `<div>${OUTCOME_SYMBOL[c.outcome]} ${c.outcome}${c.observedOutageMs !== null ? `<small> ${esc(formatMs(c.observedOutageMs))}</small>` : ''}</div>`)
            .join('')}</td>`;
        })
        .join('');
      return `<tr><th class="probe">${esc(p)} <small>${esc(pr.kind)}</small></th>${cells}<td>${esc(formatMs(pr.maxSurvivedMs))}</td><td>${esc(formatMs(pr.minFailedMs))}</td></tr>`;
    })
    .join('\n');
  return `<table class="matrix" id="tolerance-matrix">${head}${rows}</table>`;
}

function timelineSvg(a: Analysis, t: TrialResult): string {
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
  parts.push(`<rect x="${x(inj.cutAt).toFixed(1)}" y="18" width="${Math.max(1, x(inj.restoredAt) - x(inj.cutAt)).toFixed(1)}" height="${names.length * rowH + 6}" class="band"><title>blackout ${formatMs(inj.durationMs)}</title></rect>`);
  parts.push(`<text x="${x(inj.cutAt).toFixed(1)}" y="13" class="lbl">cut</text><text x="${x(inj.restoredAt).toFixed(1)}" y="13" class="lbl">restore (${esc(formatMs(inj.durationMs))})</text>`);
  names.forEach((n, i) => {
    const r = t.probes[n];
    const y = 24 + i * rowH;
    parts.push(`<text x="4" y="${y + 14}" class="name">${esc(n)}</text>`);
    if (!r) return;
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y + 10}" y2="${y + 10}" class="axis"/>`);
    for (const [s, e] of r.segments) {
      if (e < from || s > to) continue;
      parts.push(`<rect x="${x(s).toFixed(1)}" y="${y + 3}" width="${Math.max(1.5, x(e) - x(s)).toFixed(1)}" height="14" class="ok"/>`);
    }
    for (const e of r.errors) {
      parts.push(`<path d="M${x(e.t).toFixed(1)} ${y} l4 0 l-4 20 z" class="${e.fatal ? 'err' : 'warn'}"><title>${esc(formatMs(e.t - inj.cutAt))} after cut: ${esc(e.message)}</title></path>`);
    }
    parts.push(`<text x="${W - 8}" y="${y + 14}" text-anchor="end" class="oc" fill="${COLORS[r.outcome]}">${esc(r.outcome)}</text>`);
  });
  // time axis: ticks each second relative to the cut
  const span = to - from;
  const step = span > 60_000 ? 10_000 : span > 20_000 ? 5000 : 1000;
  for (let v = Math.ceil((from - inj.cutAt) / step) * step; inj.cutAt + v <= to; v += step) {
    const px = x(inj.cutAt + v);
    parts.push(`<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${H - 22}" y2="${H - 18}" class="axis"/><text x="${px.toFixed(1)}" y="${H - 6}" text-anchor="middle" class="tick">${v / 1000}s</text>`);
  }
  return `<svg class="timeline" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="timeline of trial ${t.index}">${parts.join('')}</svg>`;
}

function trialHtml(a: Analysis, t: TrialResult): string {
  const rows = Object.entries(t.probes)
    .map(
      ([n, r]) =>
        `<tr><td>${esc(n)}</td><td><span class="pill" style="background:${COLORS[r.outcome]}">${esc(r.outcome)}</span></td><td>${esc(formatMs(r.observedOutageMs))}</td><td>${esc(formatMs(r.recoveryMs))}</td><td>${esc(formatMs(r.effectiveIntervalMs))}</td><td>${esc(r.reason)}${
          r.errors.length ? `<details><summary>${r.errors.length} error(s)</summary><pre>${esc(r.errors.map((e) => `${formatMs(e.t - (t.injected?.cutAt ?? 0))} after cut${e.fatal ? ' [fatal]' : ''}: ${e.message}${e.code ? ` (${e.code})` : ''}`).join('\n'))}</pre></details>` : ''
        }</td></tr>`,
    )
    .join('');
  const shots = a.attachments
    .filter((x) => x.trial === t.index && x.contentType.startsWith('image/'))
    .map((x) => `<figure><img src="${esc(x.path)}" alt="${esc(x.name)}" width="320"><figcaption>${esc(x.probe ?? '')} ${esc(x.name)}</figcaption></figure>`)
    .join('');
  const info = t.injectorInfo.length ? `<details><summary>injector figures</summary><pre>${esc(JSON.stringify(t.injectorInfo, null, 2))}</pre></details>` : '';
  return `<section class="trial" id="trial-${t.index}"><h3>Trial ${t.index}: ${esc(lengthLabel(t.requestedMs))} requested, ${esc(formatMs(t.injected?.durationMs))} injected${t.complete ? '' : ' <span class="warnText">(incomplete)</span>'}</h3>
${timelineSvg(a, t)}
<table class="results"><tr><th>probe</th><th>outcome</th><th>observed outage</th><th>recovery</th><th>interval</th><th>why</th></tr>${rows}</table>${info}${shots ? `<div class="shots">${shots}</div>` : ''}</section>`;
}

export function htmlReport(a: Analysis): string {
  const verdict = !a.complete ? ['incomplete', 'Incomplete run: the report shows what was recorded'] : a.passed ? ['pass', 'Passed'] : ['fail', 'Failed'];
  const expectations = a.expectations.map((e) => `<li class="${e.passed ? 'ok' : 'bad'}">${esc(e.message)}</li>`).join('');
  const policies = a.probeInfo
    .map((p) => `<tr><td>${esc(p.name)}</td><td>${esc(p.kind)}</td><td>${esc(formatMs(p.intervalMs))}</td><td>${esc(formatMs(p.toleranceMs))}</td><td><code>${esc(Object.entries(p.policy).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', '))}</code></td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>blackout: ${esc(a.suite)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1d2129;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #e3e6ea;padding-bottom:4px} h3{font-size:15px}
.verdict{padding:12px 16px;border-radius:6px;font-size:18px;font-weight:600;margin:12px 0}
.verdict.pass{background:#e3f4e9;color:#1c6b3a}.verdict.fail{background:#fbe5e7;color:#8d1c25}.verdict.incomplete{background:#fff4d6;color:#7a5a00}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #e3e6ea;padding:4px 8px;text-align:left;vertical-align:top}
.matrix td.cell{color:#fff;text-align:center;min-width:90px} .matrix td.cell small{opacity:.85} .matrix th.probe small{color:#777}
.pill{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px}
.timeline{max-width:100%;height:auto;background:#fafbfc;border:1px solid #e3e6ea;border-radius:4px}
.band{fill:#c8323c;fill-opacity:.13;stroke:#c8323c;stroke-opacity:.5} .ok{fill:#2e9d57} .err{fill:#c8323c} .warn{fill:#d9a400}
.axis{stroke:#c9ced6} .lbl,.tick{font-size:10px;fill:#555} .name{font-size:12px;fill:#1d2129} .oc{font-size:11px;font-weight:600}
li.ok::marker{content:"✓ ";color:#2e9d57} li.bad::marker{content:"✗ ";color:#c8323c} .note,.meta{color:#666} .warnText{color:#b07000}
.shots{display:flex;gap:12px;flex-wrap:wrap} figure{margin:0} pre{white-space:pre-wrap;font-size:12px}
</style></head><body>
<h1>blackout: ${esc(a.suite)}</h1>
<div class="meta">target ${esc(a.target.name)} (${esc(a.target.address)}) · injector <code>${esc(a.injector.kind)}</code> · ${a.trials.length} trial(s) · ${esc(new Date(a.startedWallMs).toISOString())} · host ${esc(a.host)} · blackout ${esc(a.version)}</div>
<div class="verdict ${verdict[0]}" id="verdict">${esc(verdict[1]!)}</div>
${expectations ? `<ul class="expectations">${expectations}</ul>` : ''}
${a.endReason ? `<p class="meta">End: ${esc(a.endReason)}</p>` : ''}
<h2>Tolerance matrix</h2>
<p class="note">Outcome per probe and blackout length, with the outage the session itself saw (it is longer than the blackout: TCP waits out its retransmission backoff).</p>
${matrixHtml(a)}
<h2>Trials</h2>
${a.trials.map((t) => trialHtml(a, t)).join('\n')}
<h2>Probe policies</h2>
<table><tr><th>probe</th><th>kind</th><th>interval</th><th>tolerance</th><th>policy</th></tr>${policies}</table>
${a.heal.length ? `<h2>Healed before the run</h2><ul>${a.heal.map((h) => `<li>${esc(h)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}
