/** summary.md: the verdict and the tolerance matrix, for pull requests and vendor reports. */
import type { Analysis } from '../analysis.ts';
import { formatMs } from '../clock.ts';
import { toleranceMatrix, lengthLabel, OUTCOME_SYMBOL } from './matrix.ts';

export function matrixMarkdown(a: Analysis): string {
  const m = toleranceMatrix(a);
  const head = `| probe | ${m.lengths.map(lengthLabel).join(' | ')} | survives up to | fails from |`;
  const sep = `|---|${m.lengths.map(() => '---').join('|')}|---|---|`;
  const rows = m.probes.map((p) => {
    const cells = m.lengths.map((l) =>
      (m.cells[p]?.[l] ?? []).map((c) => `${OUTCOME_SYMBOL[c.outcome]} ${c.outcome}${c.observedOutageMs !== null ? ` (${formatMs(c.observedOutageMs)})` : ''}`).join('<br>') || '–',
    );
    const pr = a.probes[p]!;
    return `| ${p} (${pr.kind}) | ${cells.join(' | ')} | ${formatMs(pr.maxSurvivedMs)} | ${formatMs(pr.minFailedMs)} |`;
  });
  return [head, sep, ...rows].join('\n');
}

export function markdownReport(a: Analysis): string {
  const lines: string[] = [];
  const verdict = !a.complete ? '⚠ INCOMPLETE RUN' : a.passed ? '✅ PASSED' : '❌ FAILED';
  lines.push(`# blackout: ${a.suite}`, '');
  lines.push(`**${verdict}** — target ${a.target.name} (${a.target.address}), injector \`${a.injector.kind}\`, ${a.trials.length} trial(s), started ${new Date(a.startedWallMs).toISOString()}`);
  if (!a.complete) lines.push('', '> The run did not finish (no run-end event): the report shows what was recorded up to its last event.');
  if (a.endReason) lines.push('', `End: ${a.endReason}`);
  for (const e of a.expectations) lines.push(`- ${e.passed ? '✅' : '❌'} ${e.message}`);
  lines.push('', '## Tolerance matrix', '', 'Outcome per probe and blackout length, with the outage the session itself saw.', '', matrixMarkdown(a), '');
  lines.push('Legend: ✓ transparent · ‖ stalled (survived) · ↻ recovered (session lost, reconnected) · ✗ failed · ? unknown', '');
  lines.push('## Trials', '');
  lines.push('| trial | requested | injected | probe | outcome | observed outage | recovery | why |', '|---|---|---|---|---|---|---|---|');
  for (const t of a.trials) {
    for (const [name, r] of Object.entries(t.probes)) {
      lines.push(`| ${t.index} | ${lengthLabel(t.requestedMs)} | ${formatMs(t.injected?.durationMs)} | ${name} | ${r.outcome} | ${formatMs(r.observedOutageMs)} | ${formatMs(r.recoveryMs)} | ${r.reason.replace(/\|/g, '\\|')} |`);
    }
  }
  lines.push('', '## Probe policies', '', 'What each client was configured to tolerate — the reason a session breaks where it does.', '');
  for (const p of a.probeInfo) lines.push(`- **${p.name}** (${p.kind}, every ${formatMs(p.intervalMs)}, tolerance ${formatMs(p.toleranceMs)}): ${Object.entries(p.policy).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ')}`);
  if (a.heal.length) lines.push('', '## Healed before the run', '', ...a.heal.map((h) => `- ${h}`));
  return lines.join('\n') + '\n';
}
