/**
 * Charts as inline SVG (no library, no script, no CDN): pure functions from
 * numbers to markup, shared by the run report and the comparison. Every chart
 * is an <svg data-chart="…"> whose data marks carry class "mark", so a test
 * can check that each one rendered something.
 */
import { joinChunks } from './chunks.ts';

export const esc = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);

export const PALETTE = ['#2f6fdf', '#e0622a', '#2e9d57', '#9b4fd0', '#c8323c', '#13a3a3', '#b58900', '#6b7280', '#d6409f', '#4b5563'];

const n1 = (v: number): string => (Math.round(v * 10) / 10).toString();

export function secLabel(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  if (ms === 0) return '0';
  return ms >= 1000 ? `${+(ms / 1000).toFixed(2)}s` : `${Math.round(ms)}ms`;
}

/** "nice" ticks from 0 to max */
export function ticks(max: number, target = 6): number[] {
  if (!(max > 0)) return [0];
  const raw = max / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v <= max * 1.0001; v += step) out.push(Math.round(v * 1000) / 1000);
  return out;
}

interface Frame {
  W: number;
  H: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  xMax: number;
  yMax: number;
  x(v: number): number;
  y(v: number): number;
}

function frame(xMax: number, yMax: number, opts: { W?: number; H?: number; left?: number } = {}): Frame {
  const W = opts.W ?? 760;
  const H = opts.H ?? 300;
  const left = opts.left ?? 56;
  const right = 16;
  const top = 14;
  const bottom = 40;
  return {
    W,
    H,
    left,
    right,
    top,
    bottom,
    xMax,
    yMax,
    x: (v) => left + (Math.min(Math.max(v, 0), xMax) / xMax) * (W - left - right),
    y: (v) => H - bottom - (Math.min(Math.max(v, 0), yMax) / yMax) * (H - top - bottom),
  };
}

function axes(f: Frame, xLabel: string, yLabel: string, yFmt: (v: number) => string = secLabel): string {
  const p: string[] = [];
  for (const t of ticks(f.xMax)) {
    const x = f.x(t);
    p.push(
      `<line x1="${n1(x)}" x2="${n1(x)}" y1="${f.top}" y2="${f.H - f.bottom}" class="grid"/><text x="${n1(x)}" y="${f.H - f.bottom + 14}" text-anchor="middle" class="tick">${esc(secLabel(t))}</text>`,
    );
  }
  for (const t of ticks(f.yMax, 5)) {
    const y = f.y(t);
    p.push(`<line x1="${f.left}" x2="${f.W - f.right}" y1="${n1(y)}" y2="${n1(y)}" class="grid"/><text x="${f.left - 6}" y="${n1(y + 4)}" text-anchor="end" class="tick">${esc(yFmt(t))}</text>`);
  }
  p.push(
    `<line x1="${f.left}" x2="${f.W - f.right}" y1="${f.H - f.bottom}" y2="${f.H - f.bottom}" class="axis"/><line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.H - f.bottom}" class="axis"/>`,
  );
  p.push(`<text x="${(f.left + f.W - f.right) / 2}" y="${f.H - 6}" text-anchor="middle" class="axlabel">${esc(xLabel)}</text>`);
  p.push(`<text transform="translate(12 ${(f.top + f.H - f.bottom) / 2}) rotate(-90)" text-anchor="middle" class="axlabel">${esc(yLabel)}</text>`);
  return p.join('');
}

function legend(items: Array<{ name: string; color: string; dash?: boolean }>): string {
  return `<div class="legend">${items.map((i) => `<span><i style="background:${i.color}${i.dash ? ';opacity:.6' : ''}"></i>${esc(i.name)}</span>`).join('')}</div>`;
}

function svg(kind: string, f: Frame, body: string, label: string): string {
  return `${svgOpen(kind, f, label)}${body}</svg>`;
}

function svgOpen(kind: string, f: Frame, label: string): string {
  return `<svg class="chart" data-chart="${esc(kind)}" viewBox="0 0 ${f.W} ${f.H}" width="${f.W}" height="${f.H}" role="img" aria-label="${esc(label)}">`;
}

// ------------------------------------------------------------ survival curve

export interface SurvivalSeries {
  name: string;
  color: string;
  /** per probe: demonstrated survival up to lo, failure from hi (ms; null = open side) */
  probes: Array<{ lo: number | null; hi: number | null }>;
}

/**
 * Share of sessions that survive a blackout of length x: the solid step
 * counts a session as surviving up to the longest blackout it was seen to
 * survive (demonstrated); the dashed step up to the shortest it failed
 * (optimistic). The breaking points lie between the two.
 */
export function survivalChart(series: SurvivalSeries[], xMaxIn: number, title = 'share of sessions surviving a blackout'): string {
  const xMax = Math.max(1000, xMaxIn * 1.05);
  const f = frame(xMax, 100);
  const parts = [axes(f, 'blackout length', '% of sessions surviving', (v) => `${v}%`)];
  for (const s of series) {
    const n = s.probes.length || 1;
    // a session that survived the longest blackout tried never failed: its solid line does not drop there
    const until = Math.max(0, ...s.probes.flatMap((p) => [p.lo ?? 0, p.hi ?? 0]));
    const step = (edgesIn: number[]) => {
      const edges = [...edgesIn].sort((a, b) => a - b);
      let d = `M${n1(f.x(0))} ${n1(f.y(100))}`;
      let alive = n;
      for (const e of edges) {
        if (e >= xMax) break;
        d += ` H${n1(f.x(e))}`;
        alive--;
        d += ` V${n1(f.y((alive / n) * 100))}`;
      }
      return d + ` H${n1(f.x(xMax))}`;
    };
    const solid = s.probes.map((p) => (p.hi === null && p.lo !== null && p.lo >= until ? Infinity : (p.lo ?? 0)));
    parts.push(`<path d="${step(solid)}" class="mark line" stroke="${s.color}"><title>${esc(s.name)}: demonstrated</title></path>`);
    parts.push(`<path d="${step(s.probes.map((p) => p.hi ?? Infinity))}" class="mark line dashed" stroke="${s.color}"><title>${esc(s.name)}: until the first failure</title></path>`);
  }
  return `<figure class="chartbox">${svg('survival', f, parts.join(''), title)}${legend(series.map((s) => ({ name: s.name, color: s.color })))}<figcaption>Solid: sessions that were seen to survive a blackout that long. Dashed: sessions that had not yet failed at that length. Each session's breaking point lies between the two.</figcaption></figure>`;
}

// ------------------------------------------------------------ tolerance lanes

export interface Lane {
  name: string;
  sub?: string;
  lo: number | null;
  hi: number | null;
  flaky: boolean;
  points: Array<{ ms: number; survived: boolean; trial: number }>;
  predicted?: { ms: number; range: [number, number] } | null;
}

/** One row per probe: demonstrated survival (green), the bracket (grey), failure (red), every trial marked, the prediction as a diamond. */
export function laneChart(lanes: Lane[], xMaxIn: number, kind = 'lanes'): string {
  return joinChunks(laneChartChunks(lanes, xMaxIn, kind));
}

/** the same in pieces, a lane each: a long run's lanes mark every trial (15 150 marks in 303 trials of 50 probes) */
export function* laneChartChunks(lanes: Lane[], xMaxIn: number, kind = 'lanes'): Generator<string> {
  const xMax = Math.max(1000, xMaxIn * 1.05);
  const rowH = 26;
  const H = 14 + lanes.length * rowH + 40;
  const f = frame(xMax, 1, { H, left: 150 });
  const head: string[] = [];
  for (const t of ticks(xMax)) {
    const x = f.x(t);
    head.push(
      `<line x1="${n1(x)}" x2="${n1(x)}" y1="${f.top}" y2="${H - f.bottom}" class="grid"/><text x="${n1(x)}" y="${H - f.bottom + 14}" text-anchor="middle" class="tick">${esc(secLabel(t))}</text>`,
    );
  }
  head.push(`<text x="${(f.left + f.W - f.right) / 2}" y="${H - 6}" text-anchor="middle" class="axlabel">blackout length</text>`);
  yield `<figure class="chartbox">${svgOpen(kind, f, 'breaking point per session')}${head.join('')}`;
  for (const [i, l] of lanes.entries()) {
    const parts: string[] = [];
    const y = f.top + i * rowH;
    parts.push(`<text x="4" y="${y + 16}" class="name">${esc(l.name)}${l.sub ? ` <tspan class="sub">${esc(l.sub)}</tspan>` : ''}</text>`);
    const x0 = f.x(0);
    const xlo = l.lo !== null ? f.x(l.lo) : x0;
    const xhi = l.hi !== null ? f.x(l.hi) : f.x(xMax);
    if (l.lo !== null) parts.push(`<rect x="${n1(x0)}" y="${y + 6}" width="${n1(Math.max(1, xlo - x0))}" height="12" class="mark surv"><title>survived up to ${esc(secLabel(l.lo))}</title></rect>`);
    if (!l.flaky && xhi > xlo)
      parts.push(
        `<rect x="${n1(xlo)}" y="${y + 6}" width="${n1(xhi - xlo)}" height="12" class="mark brk"><title>breaking point between ${esc(secLabel(l.lo ?? 0))} and ${l.hi === null ? 'beyond the range' : esc(secLabel(l.hi))}</title></rect>`,
      );
    if (l.hi !== null)
      parts.push(
        `<rect x="${n1(xhi)}" y="${y + 6}" width="${n1(Math.max(1, f.x(xMax) - xhi))}" height="12" class="mark fail"><title>did not survive ${esc(secLabel(l.hi))}${l.flaky ? ' (flaky)' : ''}</title></rect>`,
      );
    if (l.predicted && Number.isFinite(l.predicted.ms) && l.predicted.ms <= xMax) {
      const px = f.x(l.predicted.ms);
      parts.push(
        `<path d="M${n1(px)} ${y + 2} l5 10 l-5 10 l-5 -10 z" class="mark pred"><title>predicted from the policy: ~${esc(secLabel(l.predicted.ms))} (${esc(secLabel(l.predicted.range[0]))}–${esc(secLabel(l.predicted.range[1]))})</title></path>`,
      );
    }
    for (const p of l.points) {
      const px = f.x(p.ms);
      parts.push(
        p.survived
          ? `<circle cx="${n1(px)}" cy="${y + 12}" r="3.5" class="mark pt-ok"><title>trial ${p.trial}: survived ${esc(secLabel(p.ms))}</title></circle>`
          : `<path d="M${n1(px - 3.5)} ${y + 8.5} l7 7 m0 -7 l-7 7" class="mark pt-bad"><title>trial ${p.trial}: did not survive ${esc(secLabel(p.ms))}</title></path>`,
      );
    }
    if (l.flaky) parts.push(`<text x="${f.W - f.right}" y="${y + 16}" text-anchor="end" class="flaky">flaky</text>`);
    yield parts.join('');
  }
  yield `</svg><figcaption>Green: survived. Grey: the breaking point lies here. Red: did not survive. ● a survived trial, ✕ a failed one, ◆ the breaking point predicted from the client's policy.</figcaption></figure>`;
}

// ------------------------------------------------------------ x/y line charts

export interface XYPoint {
  x: number;
  y: number;
}

export interface XYSeries<P extends XYPoint = XYPoint> {
  name: string;
  color: string;
  points: P[];
  /** a point's tooltip, made as its mark is written (a long run's charts have 15 150 points); else "x → y" */
  labelOf?: (p: P) => string;
  dashed?: boolean;
}

interface XYOptions {
  xLabel: string;
  yLabel: string;
  diagonal?: boolean;
  caption?: string;
  title: string;
}

/** an x/y chart in pieces, a series each */
export function* xyChartChunks<P extends XYPoint>(kind: string, series: Array<XYSeries<P>>, opts: XYOptions): Generator<string> {
  let xIn = 1000;
  let yIn = 500;
  for (const s of series)
    for (const p of s.points) {
      if (p.x > xIn) xIn = p.x;
      if (p.y > yIn) yIn = p.y;
    }
  const xMax = xIn * 1.05;
  const yMax = Math.max(yIn, opts.diagonal ? xMax : 0) * 1.05;
  const f = frame(xMax, yMax);
  let head = svgOpen(kind, f, opts.title) + axes(f, opts.xLabel, opts.yLabel);
  if (opts.diagonal)
    head += `<line x1="${n1(f.x(0))}" y1="${n1(f.y(0))}" x2="${n1(f.x(Math.min(xMax, yMax)))}" y2="${n1(f.y(Math.min(xMax, yMax)))}" class="diag"><title>observed = injected</title></line>`;
  yield `<figure class="chartbox">${head}`;
  for (const s of series) {
    const parts: string[] = [];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) parts.push(`<path d="${pts.map((p, i) => `${i ? 'L' : 'M'}${n1(f.x(p.x))} ${n1(f.y(p.y))}`).join(' ')}" class="mark line${s.dashed ? ' dashed' : ''}" stroke="${s.color}"/>`);
    for (const p of pts)
      parts.push(
        `<circle cx="${n1(f.x(p.x))}" cy="${n1(f.y(p.y))}" r="3.5" class="mark dot" fill="${s.color}"><title>${esc(s.name)}: ${esc(s.labelOf?.(p) ?? `${secLabel(p.x)} → ${secLabel(p.y)}`)}</title></circle>`,
      );
    yield parts.join('');
  }
  yield `</svg>${legend(series.map((s) => ({ name: s.name, color: s.color, dash: s.dashed })))}${opts.caption ? `<figcaption>${esc(opts.caption)}</figcaption>` : ''}</figure>`;
}

export const CHART_CSS = `
.chartbox{margin:8px 0 16px} .chart{max-width:100%;height:auto;background:#fff;border:1px solid #e3e6ea;border-radius:4px}
.chart .grid{stroke:#eef0f3} .chart .axis{stroke:#9aa1ab} .chart .tick{font-size:10px;fill:#555} .chart .axlabel{font-size:11px;fill:#333}
.chart .line{fill:none;stroke-width:2} .chart .dashed{stroke-dasharray:5 4;opacity:.7} .chart .diag{stroke:#bbb;stroke-dasharray:3 3}
.chart .surv{fill:#2e9d57} .chart .brk{fill:#c9ced6} .chart .fail{fill:#c8323c;fill-opacity:.8} .chart .pred{fill:#1d2129}
.chart .pt-ok{fill:#fff;stroke:#1c6b3a;stroke-width:2} .chart .pt-bad{stroke:#1d2129;stroke-width:2.2} .chart .name{font-size:12px;fill:#1d2129} .chart .sub{fill:#888;font-size:10px}
.chart .flaky{font-size:11px;fill:#b07000;font-weight:600}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:#333;margin:4px 0} .legend i{display:inline-block;width:14px;height:4px;margin-right:5px;vertical-align:middle}
figcaption{font-size:12px;color:#666}
`;
