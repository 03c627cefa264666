/**
 * Every reporter is a pure function of the analysis (itself a pure function
 * of the events); `writeReports` is the only place that touches the disk, so
 * `blackout report DIR` rebuilds exactly what the run wrote. The log is
 * folded in one streaming pass (src/analysis/analysis.ts), never held whole.
 */
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { AnalysisBuilder, type Analysis, type TrialEndListener } from '../analysis/analysis.ts';
import { foldEvents, writeFully } from '../core/event-log.ts';
import { htmlReportChunks, type Assets } from './html.ts';
import { jsonReportChunks } from './json.ts';
import { junitReportChunks } from './junit.ts';
import { markdownReportChunks } from './markdown.ts';
import { AllureResultsWriter, type ReportOptions } from './allure.ts';
import { FileWriter } from './file-writer.ts';
import type { NextHistory } from './allure-history.ts';

export interface Reporter {
  file: string;
  /** the report in pieces, in order (reporters/chunks.ts): written as they come, never held whole */
  render(a: Analysis, assets: Assets): Iterable<string>;
}

export const reporters: Reporter[] = [
  { file: 'summary.json', render: jsonReportChunks },
  { file: 'junit.xml', render: junitReportChunks },
  { file: 'summary.md', render: markdownReportChunks },
  { file: 'report.html', render: htmlReportChunks },
];

/** the bytes gathered into one write(2) */
const WRITE_BYTES = 1 << 18;

/**
 * Writes a report's pieces to `path` as they come: each is encoded straight
 * into one reused buffer, written when the next might not fit (a piece larger
 * than the buffer is encoded on its own). No piece is joined to another as a
 * string, and no memory is taken per write. `between` runs after each
 * piece (other work that must not wait for the whole report).
 */
export function writeChunks(path: string, chunks: Iterable<string>, between?: () => void): void {
  const fd = openSync(path, 'w');
  try {
    const buf = Buffer.allocUnsafe(WRITE_BYTES);
    let used = 0;
    const write = (bytes: Buffer, end: number) => writeFully(fd, bytes, end, path);
    for (const c of chunks) {
      // UTF-8 takes at most 3 bytes per UTF-16 unit: room for the worst case, or write what is there first
      if (used + c.length * 3 > WRITE_BYTES) {
        write(buf, used);
        used = 0;
      }
      if (c.length * 3 > WRITE_BYTES) {
        const bytes = Buffer.from(c);
        write(bytes, bytes.length);
      } else used += buf.write(c, used);
      between?.();
    }
    write(buf, used);
  } finally {
    closeSync(fd);
  }
}

export interface WrittenReports {
  analysis: Analysis;
  files: string[];
  tornTail: boolean;
  /** torn lines skipped anywhere in events.jsonl */
  tornLines: number;
  /** the Allure history the next run of the suite carries (for the results store), folded on demand */
  nextAllureHistory: () => NextHistory;
}

/** Folds a run folder's events.jsonl into its analysis, streaming; `onTrialEnd` hears of each trial as it is folded. */
export function analyzeRunDir(runDir: string, onTrialEnd?: TrialEndListener): { analysis: Analysis; tornTail: string | null; tornLines: number } {
  const b = new AnalysisBuilder(onTrialEnd);
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
 * Every report of a run folder. Allure's files go while the log is folded, a
 * trial's as soon as its trial-end is read, and a large run's on a thread of
 * their own (file-writer.ts): the file system's creates, the longest part of
 * a long run's report, overlap the fold and the other reports. The thread's
 * queue is bounded (4 MiB): what it has no room for during the fold goes
 * between the pieces of the other reports, which are written piece by piece
 * as they render: no report is ever held whole.
 */
export async function writeReports(runDir: string, opts: ReportOptions = {}): Promise<WrittenReports> {
  const writer = new FileWriter();
  try {
    const allureWriter = new AllureResultsWriter(
      runDir,
      (path, f) => writer.put(path, f),
      () => writer.room,
    );
    let folded: ReturnType<typeof analyzeRunDir>;
    try {
      folded = analyzeRunDir(runDir, (t, start, attachments) => allureWriter.trial(t, start, attachments));
    } catch (e) {
      // an invalid event half-way through the log: what the trials before it wrote goes, and nothing else was touched
      await writer.close();
      allureWriter.abort();
      throw e;
    }
    const { analysis, tornTail, tornLines } = folded;
    // Allure's files the writer had no room for during the fold go between the other reports' pieces
    const rest = allureWriter.settle(analysis);
    const assets = loadAssets(runDir, analysis);
    const files: string[] = [];
    for (const r of reporters) {
      const path = join(runDir, r.file);
      writeChunks(path, r.render(analysis, assets), rest.pump);
      files.push(path);
    }
    const allure = rest.end(opts);
    await writer.done();
    files.push(allure.dir);
    return { analysis, files, tornTail: tornTail !== null, tornLines, nextAllureHistory: allure.nextHistory };
  } finally {
    await writer.close();
  }
}
