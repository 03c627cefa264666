/** summary.md: the verdict and the tolerance matrix, for pull requests and vendor reports. */
import type { Analysis } from '../analysis/analysis.ts';
import { testsSummaryText } from '../analysis/test-cases.ts';
import { hypervisorFigures } from './hypervisor-figures.ts';

import { toleranceMatrix, lengthLabel } from './matrix.ts';
import { OUTCOME_GLYPH, formatBytes, formatMs } from '../core/format.ts';
import { joinChunks } from './chunks.ts';

export function matrixMarkdown(a: Analysis): string {
  return [...matrixMarkdownLines(a)].join('\n');
}

/** the matrix's lines, a probe's row at a time (a row lists every trial of its probe) */
function* matrixMarkdownLines(a: Analysis): Generator<string> {
  const m = toleranceMatrix(a);
  yield `| probe | ${m.lengths.map(lengthLabel).join(' | ')} | survives up to | fails from |`;
  yield `|---|${m.lengths.map(() => '---').join('|')}|---|---|`;
  for (const p of m.probes) {
    const cells = m.lengths.map(
      (l) => (m.cells[p]?.[l] ?? []).map((c) => `${OUTCOME_GLYPH[c.outcome]} ${c.outcome}${c.observedOutageMs !== null ? ` (${formatMs(c.observedOutageMs)})` : ''}`).join('<br>') || '–',
    );
    const pr = a.probes[p]!;
    yield `| ${p} (${pr.kind}) | ${cells.join(' | ')} | ${formatMs(pr.maxSurvivedMs)} | ${formatMs(pr.minFailedMs)} |`;
  }
}

const cellEsc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function verdictMarkdown(a: Analysis): string[] {
  const d = a.decision;
  const icon = d.verdict.level === 'safe' ? '✅' : d.verdict.level === 'limited' ? '⚠️' : d.verdict.level === 'unsafe' ? '❌' : '❔';
  const lines = [
    `> ${icon} **${d.verdict.headline}**`,
    '>',
    `> ${a.injector.migration === 'live' ? 'ℹ️' : d.migration.live.status === 'safe' ? '✅' : d.migration.live.status === 'unsafe' ? '❌' : '❔'} ${d.verdict.second}`,
  ];
  for (const c of d.migration.caveats) lines.push('>', `> ⚠ ${c}`);
  return lines;
}

export function breakingPointsMarkdown(a: Analysis): string[] {
  const lines = ['| session | survived up to | failed from | status | predicted | agreement | deciding mechanism |', '|---|---|---|---|---|---|---|'];
  for (const p of a.decision.probes) {
    const b = p.prediction.breakingMs;
    const pred = b === null ? 'no prediction' : Number.isFinite(b) ? `~${formatMs(b)}` : 'never';
    lines.push(
      `| ${p.probe} (${p.kind}) | ${formatMs(p.maxSurvivedMs)} | ${formatMs(p.minFailedMs)} | ${p.status}${p.flaky ? ' ⚠' : ''} | ${pred} | ${p.check.agreement} | ${cellEsc(p.prediction.mechanism)} |`,
    );
  }
  return lines;
}

export function migrationMarkdown(a: Analysis): string[] {
  const m = a.decision.migration;
  const lines = [`| VM memory | ${m.settings.links.map((l) => `${l.name} (${l.mbPerSec} MB/s)`).join(' | ')} |`, `|---|${m.settings.links.map(() => '---').join('|')}|`];
  for (const r of m.table)
    lines.push(`| ${formatBytes(r.memoryBytes)} | ${r.cells.map((c) => `${c.status === 'safe' ? '✓' : c.status === 'unsafe' ? '✗' : '?'} ${formatMs(c.downtimeMs)}`).join(' | ')} |`);
  return lines;
}

export function markdownReport(a: Analysis): string {
  return joinChunks(markdownReportChunks(a));
}

/** summary.md in pieces: the matrix a row at a time, the trials table a trial at a time (reporters/chunks.ts) */
export function* markdownReportChunks(a: Analysis): Generator<string> {
  let lines: string[] = [];
  // what is in `lines` so far, as the text it ends up in (a line each)
  const take = (): string => {
    const text = lines.map((l) => l + '\n').join('');
    lines = [];
    return text;
  };
  const run = !a.complete ? '⚠ INCOMPLETE RUN' : a.passed ? '✅ PASSED' : '❌ FAILED';
  lines.push(`# blackout: ${a.suite}`, '');
  lines.push(...verdictMarkdown(a), '');
  lines.push(`**${run}** — target ${a.target.name} (${a.target.address}), injector \`${a.injector.kind}\`, ${a.trials.length} trial(s), started ${new Date(a.startedWallMs).toISOString()}`);
  if (!a.complete) lines.push('', '> The run did not finish (no run-end event): the report shows what was recorded up to its last event.');
  if (a.endReason) lines.push('', `End: ${a.endReason}`);
  for (const e of a.expectations) lines.push(`- ${e.passed ? '✅' : '❌'} ${e.message}`);
  lines.push('', testsSummaryText(a.tests.counts, a.exitCode));
  const s = a.decision.search;
  lines.push('', '## Breaking points', '');
  if (s)
    lines.push(
      s.mode === 'search'
        ? `Adaptive search: ${s.trials} trial(s)${s.linearTrials !== null ? ` (a linear sweep at the same resolution: ${s.linearTrials})` : ''}; ${s.stopReason}.`
        : `List sweep: ${s.trials} trial(s).`,
      '',
    );
  lines.push(...breakingPointsMarkdown(a), '');
  if (a.decision.findings.length) {
    lines.push('## Findings', '');
    for (const f of a.decision.findings) lines.push(`- **${f.severity}** ${f.text}${f.trials?.length ? ` (trials ${f.trials.join(', ')})` : ''}`);
    lines.push('');
  }
  lines.push(
    '## Quick migration by VM size and link',
    '',
    'Model: downtime ≈ 2 × VM memory / link throughput. ✓ every session survived that long; ✗ a session failed at that length or shorter; ? not decided by the trials.',
    '',
  );
  lines.push(...migrationMarkdown(a), '');
  lines.push('## Tolerance matrix', '', 'Outcome per probe and blackout length, with the outage the session itself saw.', '');
  yield take();
  for (const line of matrixMarkdownLines(a)) yield line + '\n';
  lines.push('');
  lines.push('Legend: ✓ transparent · ‖ stalled (survived) · ↻ recovered (session lost, reconnected) · ✗ failed · ? unknown', '');
  lines.push('## Trials', '');
  lines.push('| trial | requested | injected | why this length | probe | outcome | observed outage | recovery | why |', '|---|---|---|---|---|---|---|---|---|');
  for (const t of a.trials) {
    for (const [name, r] of Object.entries(t.probes)) {
      lines.push(
        `| ${t.index} | ${lengthLabel(t.requestedMs)} | ${formatMs(t.injected?.durationMs)} | ${cellEsc(t.reason ?? '')} | ${name} | ${r.outcome} | ${formatMs(r.observedOutageMs)} | ${formatMs(r.recoveryMs)} | ${cellEsc(r.reason)} |`,
      );
    }
    yield take();
  }
  const hv = a.trials.map((t) => ({ t, rows: hypervisorFigures(t) })).filter((x) => x.rows.length);
  if (hv.length) {
    lines.push('', '## Hypervisor figures beside the measured outage', '', '| trial | the hypervisor says | measured by blackout |', '|---|---|---|');
    for (const { t, rows } of hv) {
      const side = (src: 'hypervisor' | 'harness') =>
        rows
          .filter((r) => r.source === src)
          .map((r) => `${r.label} ${formatMs(r.ms)}`)
          .join('<br>');
      lines.push(`| ${t.index} | ${side('hypervisor')} | ${side('harness')} |`);
    }
  }
  lines.push('', '## Probe policies', '', 'What each client was configured to tolerate — the reason a session breaks where it does.', '');
  for (const p of a.probeInfo)
    lines.push(
      `- **${p.name}** (${p.kind}, every ${formatMs(p.intervalMs)}, tolerance ${formatMs(p.toleranceMs)}): ${Object.entries(p.policy)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(', ')}`,
    );
  if (a.heal.length) lines.push('', '## Healed before the run', '', ...a.heal.map((h) => `- ${h}`));
  yield take();
}
