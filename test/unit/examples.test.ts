/**
 * The CI recipes in examples/ work as written: their YAML parses, every
 * `blackout …` command in them is one the real CLI program accepts (parsed by
 * commander with the actions replaced: nothing runs), the suite they run is
 * valid, and they keep the run folder and publish its junit.xml.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseCommandLine } from '../../src/cli/cli.ts';
import { loadSuite } from '../../src/run/suite.ts';
import { ROOT } from '../helpers/lab.ts';

const EX = join(ROOT, 'examples');

/** shell words of one command line: quotes, escapes, $VAR / ${VAR} / ${{ expr }} as a placeholder value */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur: string | null = null;
  const text = line.replace(/\$\{\{[^}]*\}\}/g, 'EXPR');
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const j = text.indexOf("'", i + 1);
      cur = (cur ?? '') + text.slice(i + 1, j);
      i = j;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\') s += text[++j];
        else if (text[j] === '$') {
          const m = /^\$(\{[A-Za-z_]\w*\}|[A-Za-z_]\w*)/.exec(text.slice(j));
          if (m) {
            s += 'VALUE';
            j += m[0].length - 1;
          } else s += '$';
        } else s += text[j];
      }
      cur = (cur ?? '') + s;
      i = j;
    } else if (c === '\\') cur = (cur ?? '') + text[++i];
    else if (c === '$') {
      const m = /^\$(\{[A-Za-z_]\w*\}|[A-Za-z_]\w*)/.exec(text.slice(i));
      cur = (cur ?? '') + (m ? 'VALUE' : '$');
      if (m) i += m[0].length - 1;
    } else if (c === '#' && cur === null) break;
    else if (/\s/.test(c)) {
      if (cur !== null) words.push(cur);
      cur = null;
    } else if (c === ';' || c === '|' || c === '&') {
      if (cur !== null) words.push(cur);
      cur = null;
      let op = c;
      while (text[i + 1] === '|' || text[i + 1] === '&') op += text[++i];
      words.push(op);
    } else cur = (cur ?? '') + c;
  }
  if (cur !== null) words.push(cur);
  return words;
}

/** every `blackout …` invocation in a script (continuation lines joined, split at ; && || |) */
function blackoutCommands(script: string): string[][] {
  const out: string[][] = [];
  for (const line of script.replace(/\\\n/g, ' ').split('\n')) {
    const words = shellWords(line);
    let seg: string[] = [];
    const flush = () => {
      let w = seg.filter((x) => !['then', 'do', 'else', 'if', 'sudo', 'npx', 'exec', 'time'].includes(x));
      while (w[0] && /^[A-Z_]+=/.test(w[0])) w = w.slice(1);
      if (w[0] === 'blackout') out.push(w.slice(1));
      seg = [];
    };
    for (const w of words) {
      if ([';', '&&', '||', '|', '&'].includes(w)) flush();
      else seg.push(w);
    }
    flush();
  }
  return out;
}

interface Recipe {
  file: string;
  scripts: string[];
  doc: Record<string, any>;
}

function readRecipe(file: string): Recipe {
  const doc = parseYaml(readFileSync(join(EX, file), 'utf8'), { uniqueKeys: true }) as Record<string, any>;
  const scripts: string[] = [];
  if (doc.jobs) for (const job of Object.values<any>(doc.jobs)) for (const step of job.steps ?? []) if (typeof step.run === 'string') scripts.push(step.run);
  for (const [k, job] of Object.entries<any>(doc)) {
    if (k === 'jobs' || !job || typeof job !== 'object') continue;
    for (const key of ['before_script', 'script', 'after_script']) for (const l of job[key] ?? []) scripts.push(String(l));
  }
  return { file, scripts, doc };
}

describe('CI recipes', () => {
  const recipes = ['github-actions.yml', 'gitlab-ci.yml'].map(readRecipe);

  it.each(recipes.map((r) => [r.file, r] as const))('%s: every blackout command is one the CLI accepts', async (_f, r) => {
    const cmds = r.scripts.flatMap(blackoutCommands);
    expect(cmds.map((c) => c[0])).toEqual(expect.arrayContaining(['validate', 'run']));
    for (const c of cmds) {
      const p = await parseCommandLine(c);
      expect(p, c.join(' ')).toMatchObject({ ok: true });
    }
    // the run writes the folder the recipe keeps
    const run = cmds.find((c) => c[0] === 'run' && c.includes('--out'))!;
    expect(run).toBeDefined();
    const parsed = await parseCommandLine(run);
    expect(parsed.ok && parsed.options.out).toBe('VALUE');
  });

  it('github-actions.yml keeps the run folder as an artifact and publishes junit.xml, also when the run fails', () => {
    const r = recipes[0]!;
    const steps = Object.values<any>(r.doc.jobs).flatMap((j) => j.steps);
    const upload = steps.find((s: any) => String(s.uses).startsWith('actions/upload-artifact@'));
    expect(upload).toMatchObject({ if: 'always()', with: { path: '${{ env.RUN_DIR }}' } });
    const junit = steps.find((s: any) => String(s.uses).startsWith('mikepenz/action-junit-report@'));
    expect(junit).toMatchObject({ if: 'always()', with: { report_paths: '${{ env.RUN_DIR }}/junit.xml' } });
    expect(Object.values<any>(r.doc.jobs)[0].env.RUN_DIR).toMatch(/blackout-run$/);
  });

  it('gitlab-ci.yml keeps the run folder and reports junit.xml, also when the run fails', () => {
    const job = recipes[1]!.doc.blackout;
    expect(job.artifacts).toMatchObject({ when: 'always', paths: ['blackout-run/'], reports: { junit: 'blackout-run/junit.xml' } });
    expect(job.variables.RUN_DIR).toBe('$CI_PROJECT_DIR/blackout-run');
  });

  it('the suite they run is valid', async () => {
    const s = await loadSuite(join(EX, 'app01-gateway.yaml'));
    expect(s.injector.kind).toBe('linux-gateway');
    for (const r of recipes) expect(readFileSync(join(EX, r.file), 'utf8')).toContain('blackout/app01-gateway.yaml');
  });

  it('the checker itself rejects what the CLI rejects', async () => {
    expect(blackoutCommands('cd x && blackout run "$SUITE" --out "$RUN_DIR" # comment\nnpx blackout kinds --json | jq .')).toEqual([
      ['run', 'VALUE', '--out', 'VALUE'],
      ['kinds', '--json'],
    ]);
    for (const bad of [['run', 'VALUE', '--outt', 'x'], ['nonsense', '--help'], ['run'], ['run', 'x', '--metrics', 'nohost'], ['lab', 'up', '--vmm']]) {
      expect(await parseCommandLine(bad), bad.join(' ')).toMatchObject({ ok: false, exitCode: 2 });
    }
    expect(await parseCommandLine(['run', 's.yaml', '--metrics', '127.0.0.1:9464', '--no-live'])).toMatchObject({
      ok: true,
      command: ['run'],
      options: { metrics: { host: '127.0.0.1', port: 9464 }, live: false },
    });
    expect(await parseCommandLine(['lab', 'status', '--json'])).toMatchObject({ ok: true, command: ['lab', 'status'], options: { json: true } });
  });
});
