/**
 * Every reporter is a pure function of the analysis (itself a pure function
 * of the events); `writeReports` is the only place that touches the disk, so
 * `blackout report DIR` rebuilds exactly what the run wrote. The log is
 * folded in one streaming pass (src/analysis/analysis.ts), never held whole.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { AnalysisBuilder, type Analysis } from '../analysis/analysis.ts';
import { foldEvents } from '../core/event-log.ts';
import { htmlReport, type Assets } from './html.ts';
import { jsonReport } from './json.ts';
import { junitReport } from './junit.ts';
import { markdownReport } from './markdown.ts';
import { writeAllureResults, type ReportOptions } from './allure.ts';
import { FileWriter } from './file-writer.ts';
import type { NextHistory } from './allure-history.ts';

export interface Reporter {
  file: string;
  render(a: Analysis, assets: Assets): string;
}

export const reporters: Reporter[] = [
  { file: 'summary.json', render: jsonReport },
  { file: 'junit.xml', render: junitReport },
  { file: 'summary.md', render: markdownReport },
  { file: 'report.html', render: htmlReport },
];

export interface WrittenReports {
  analysis: Analysis;
  files: string[];
  tornTail: boolean;
  /** torn lines skipped anywhere in events.jsonl */
  tornLines: number;
  /** the Allure history the next run of the suite carries (for the results store), folded on demand */
  nextAllureHistory: () => NextHistory;
}

/** Folds a run folder's events.jsonl into its analysis, streaming. */
export function analyzeRunDir(runDir: string): { analysis: Analysis; tornTail: string | null; tornLines: number } {
  const b = new AnalysisBuilder();
  const { tornTail, tornLines } = foldEvents(join(runDir, 'events.jsonl'), (e) => b.add(e));
  return { analysis: b.finish(), tornTail, tornLines };
}

const MAX_IMAGE = 4 << 20;
const MAX_IMAGES_TOTAL = 24 << 20;

/** Image attachments as data: URIs, so report.html is one self-contained file (bounded in size). */
export function loadAssets(runDir: string, a: Analysis): Assets {
  const images = new Map<string, string>();
  let total = 0;
  const root = resolve(runDir);
  for (const att of a.attachments) {
    if (!att.contentType.startsWith('image/') || images.has(att.path)) continue;
    const file = resolve(root, att.path);
    if (!file.startsWith(root + sep) || !existsSync(file)) continue;
    const size = statSync(file).size;
    if (size > MAX_IMAGE || total + size > MAX_IMAGES_TOTAL) continue;
    total += size;
    images.set(att.path, `data:${att.contentType};base64,${readFileSync(file).toString('base64')}`);
  }
  return { images };
}

/**
 * From this many Allure results (one per probe per trial) on, their files go
 * to the writing thread. Its start costs ~60 ms of CPU; writing here costs
 * ~30 µs a file (0.45 s for 15 000): below this the thread would not pay.
 */
const THREAD_FROM_RESULTS = 2000;

/**
 * Every report of a run folder. Allure's files come first; a large run's are
 * written on a thread of their own while the other reports render. Each of
 * those is written as soon as it is rendered, so only one is held at a time.
 */
export async function writeReports(runDir: string, opts: ReportOptions = {}): Promise<WrittenReports> {
  const { analysis, tornTail, tornLines } = analyzeRunDir(runDir);
  const assets = loadAssets(runDir, analysis);
  const results = analysis.trials.reduce((n, t) => n + Object.keys(t.probes).length, 0);
  const writer = results >= THREAD_FROM_RESULTS ? new FileWriter() : null;
  try {
    const allure = await writeAllureResults(runDir, analysis, opts, writer ? (path, f) => writer.put(path, f) : undefined);
    const files: string[] = [];
    for (const r of reporters) {
      const path = join(runDir, r.file);
      await writeFile(path, r.render(analysis, assets));
      files.push(path);
    }
    await writer?.done();
    files.push(allure.dir);
    return { analysis, files, tornTail: tornTail !== null, tornLines, nextAllureHistory: allure.nextHistory };
  } finally {
    await writer?.close();
  }
}
