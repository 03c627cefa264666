/**
 * junit.xml: the run's test cases (src/analysis/test-cases.ts) — a case per probe per
 * trial with its outcome in the name, a case per expectation — so a CI
 * server's failure count is the run's: exactly the cases the exit code
 * counts. Observations are passed cases; the verdict and findings are
 * properties and system-out.
 */
import type { Analysis } from '../analysis/analysis.ts';
import type { TestCase } from '../analysis/test-cases.ts';
import { joinChunks } from './chunks.ts';

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '');
}

export function junitReport(a: Analysis): string {
  return joinChunks(junitReportChunks(a));
}

/** junit.xml in pieces: a test case at a time (reporters/chunks.ts) */
export function* junitReportChunks(a: Analysis): Generator<string> {
  // one case list (src/analysis/test-cases.ts): a <failure> is a failing test, exactly what the exit code counts
  const { cases, counts } = a.tests;
  const trialOf = new Map(a.trials.map((t) => [t.index, t]));
  const flaky = new Set(a.decision.probes.filter((p) => p.flaky).map((p) => p.probe));
  const testcase = (c: TestCase): string => {
    const t = c.trial !== undefined ? trialOf.get(c.trial) : undefined;
    const r = t && c.probe ? t.probes[c.probe] : undefined;
    const secs = t ? ((t.endedAt ?? t.startedAt) - t.startedAt) / 1000 : 0;
    let body = '';
    if (c.status === 'skipped') body = `<skipped message="${xmlEscape(c.message ?? '')}"/>`;
    else if (c.status === 'failed')
      body = `<failure message="${xmlEscape(c.message ?? '')}" type="${xmlEscape(c.type ?? 'failure')}">${r ? xmlEscape(r.errors.map((e) => `${e.t.toFixed(1)} ms: ${e.message}`).join('\n')) : ''}</failure>`;
    else if (c.status === 'error') body = `<error message="${xmlEscape(c.message ?? '')}" type="${xmlEscape(c.type ?? 'error')}"/>`;
    const props: Array<[string, string]> = [];
    if (c.outcome) props.push(['outcome', c.outcome]);
    if (c.observation) props.push(['observation', 'true']);
    if (c.breaks) props.push(['breaks', c.breaks]);
    if (c.probe && c.group === 'session' && flaky.has(c.probe)) props.push(['flaky', 'true']);
    const out =
      r && t
        ? [
            `outcome=${r.outcome} observedOutageMs=${r.observedOutageMs?.toFixed(1) ?? '-'} recoveryMs=${r.recoveryMs?.toFixed(1) ?? '-'} injectedMs=${t.injected?.durationMs.toFixed(1) ?? '-'}`,
            ...(c.status === 'passed' && c.message ? [`${c.observation ? 'observed (fails nothing: no expectation covers this length)' : `breaks ${c.breaks}`} — ${c.message}`] : []),
            ...(c.status === 'passed' && r.errors.length ? r.errors.map((e) => `${e.t.toFixed(1)} ms: ${e.message}`) : []),
          ].join('\n')
        : (c.message ?? '');
    const propXml = props.length ? `<properties>${props.map(([k, v]) => `<property name="${xmlEscape(k)}" value="${xmlEscape(v)}"/>`).join('')}</properties>` : '';
    return `    <testcase classname="${xmlEscape(c.classname)}" name="${xmlEscape(c.name)}" time="${secs.toFixed(3)}">${propXml}${body}${out ? `<system-out>${xmlEscape(out)}</system-out>` : ''}</testcase>`;
  };
  const failures = counts.failed;
  const errors = counts.errors;
  const skipped = counts.skipped;
  const total = counts.tests;
  const d = a.decision;
  const props = [
    ['verdict', d.verdict.headline],
    ['verdict.level', d.verdict.level],
    ['verdict.live', d.verdict.live],
    ['tests.strict', String(counts.strict)],
    ['tests.observations', String(counts.observations)],
    ['exitCode', a.exitCode === null ? '-' : String(a.exitCode)],
    ...d.migration.overall.map((o) => [`quickMigration.safeUpTo.${o.link}`, o.text]),
    ...d.probes.map((p) => [
      `breakingPoint.${p.probe}`,
      `survived ${p.maxSurvivedMs === null ? '-' : p.maxSurvivedMs.toFixed(1)} ms, failed ${p.minFailedMs === null ? '-' : p.minFailedMs.toFixed(1)} ms (${p.status}); policy: ${p.check.agreement}`,
    ]),
    ...d.findings.map((f, i) => [`finding.${i + 1}`, `[${f.severity}] ${f.text}`]),
  ];
  yield `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="blackout" tests="${total}" failures="${failures}" errors="${errors}" skipped="${skipped}">
  <testsuite name="${xmlEscape(a.suite)}" tests="${total}" failures="${failures}" errors="${errors}" skipped="${skipped}" timestamp="${new Date(a.startedWallMs).toISOString()}" hostname="${xmlEscape(a.host)}">
    <properties>
${props.map(([k, v]) => `      <property name="${xmlEscape(k!)}" value="${xmlEscape(v!)}"/>`).join('\n')}
    </properties>
`;
  for (const c of cases) yield testcase(c) + '\n';
  if (counts.tests === 0) yield '\n';
  yield `    <system-out>${xmlEscape(`VERDICT: ${d.verdict.headline}\n${d.verdict.second}\nTESTS: ${failures} failed, ${errors} in error, ${skipped} skipped, ${counts.passed} passed (${counts.observations} of them observations: sessions that did not survive a length no expectation covers${counts.strict ? '' : '; strict: true makes them failures'})${d.findings.length ? `\nFINDINGS:\n${d.findings.map((f) => `- [${f.severity}] ${f.text}`).join('\n')}` : ''}`)}</system-out>
  </testsuite>
</testsuites>
`;
}
