/** junit.xml: a testcase per probe per trial, the cause in the failure message, so CI systems show it. */
import type { Analysis } from '../analysis/analysis.ts';
import { lengthLabel } from './matrix.ts';
import { survived } from '../core/format.ts';

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '');
}

export function junitReport(a: Analysis): string {
  const cases: string[] = [];
  let failures = 0;
  let skipped = 0;
  for (const t of a.trials) {
    for (const [name, r] of Object.entries(t.probes)) {
      const secs = ((t.endedAt ?? t.startedAt) - t.startedAt) / 1000;
      const title = `${name} (${r.kind}) survives a ${lengthLabel(t.requestedMs)} blackout [trial ${t.index}]`;
      let body = '';
      if (r.outcome === 'unknown') {
        skipped++;
        body = `<skipped message="${xmlEscape(r.reason)}"/>`;
      } else if (!survived(r.outcome)) {
        failures++;
        body = `<failure message="${xmlEscape(`${r.outcome}: ${r.reason}`)}" type="${r.outcome}">${xmlEscape(r.errors.map((e) => `${e.t.toFixed(1)} ms: ${e.message}`).join('\n'))}</failure>`;
      }
      const out = `outcome=${r.outcome} observedOutageMs=${r.observedOutageMs?.toFixed(1) ?? '-'} recoveryMs=${r.recoveryMs?.toFixed(1) ?? '-'} injectedMs=${t.injected?.durationMs.toFixed(1) ?? '-'}`;
      cases.push(`    <testcase classname="${xmlEscape(`blackout.${a.suite}.${name}`)}" name="${xmlEscape(title)}" time="${secs.toFixed(3)}">${body}<system-out>${xmlEscape(out)}</system-out></testcase>`);
    }
  }
  for (const e of a.expectations) {
    if (!e.passed) failures++;
    cases.push(`    <testcase classname="${xmlEscape(`blackout.${a.suite}.expect`)}" name="${xmlEscape(`expect ${e.probe} survives ${lengthLabel(e.survivesMs)}`)}" time="0">${e.passed ? '' : `<failure message="${xmlEscape(e.message)}" type="expectation"/>`}</testcase>`);
  }
  const total = cases.length;
  const d = a.decision;
  const props = [
    ['verdict', d.verdict.headline],
    ['verdict.level', d.verdict.level],
    ['verdict.live', d.verdict.live],
    ...d.migration.overall.map((o) => [`quickMigration.safeUpTo.${o.link}`, o.text]),
    ...d.probes.map((p) => [`breakingPoint.${p.probe}`, `survived ${p.maxSurvivedMs === null ? '-' : p.maxSurvivedMs.toFixed(1)} ms, failed ${p.minFailedMs === null ? '-' : p.minFailedMs.toFixed(1)} ms (${p.status}); policy: ${p.check.agreement}`]),
    ...d.findings.map((f, i) => [`finding.${i + 1}`, `[${f.severity}] ${f.text}`]),
  ];
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="blackout" tests="${total}" failures="${failures}" skipped="${skipped}">
  <testsuite name="${xmlEscape(a.suite)}" tests="${total}" failures="${failures}" skipped="${skipped}" timestamp="${new Date(a.startedWallMs).toISOString()}" hostname="${xmlEscape(a.host)}">
    <properties>
${props.map(([k, v]) => `      <property name="${xmlEscape(k!)}" value="${xmlEscape(v!)}"/>`).join('\n')}
    </properties>
${cases.join('\n')}
    <system-out>${xmlEscape(`VERDICT: ${d.verdict.headline}\n${d.verdict.second}${d.findings.length ? `\nFINDINGS:\n${d.findings.map((f) => `- [${f.severity}] ${f.text}`).join('\n')}` : ''}`)}</system-out>
  </testsuite>
</testsuites>
`;
}
