/**
 * Every `blackout` command in the shipped examples (the Kubernetes manifests,
 * the CI matrix) is one the CLI accepts: the real command tree parses it
 * (subcommand, options, arguments) with every action replaced by a check of
 * the values the real action would validate first (shard, store URL,
 * durations). And the example fleet file plans (every suite template valid), and the
 * shard examples (a sweep's and a fleet's) merge as many folders as they make.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/cli.ts';
import { parseShard } from '../../src/fleet/shard.ts';
import { checkStoreUrl } from '../../src/store/store-url.ts';
import { parseDurationOpt } from '../../src/fleet/commands.ts';
import { loadFleet } from '../../src/fleet/fleet-file.ts';
import { isFleetFile } from '../../src/fleet/fleet-shard.ts';
import { ROOT } from '../helpers/lab.ts';

const EX = join(ROOT, 'examples');

/** shell-ish words of one command line (quotes honoured; no expansion needed in the examples) */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m; (m = re.exec(line));) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** placeholders filled as the platform would (a Job's index, a matrix value, an env var) */
function expand(s: string): string {
  return s
    .replace(/\$\(JOB_COMPLETION_INDEX\)/g, '0')
    .replace(/\$\{\{\s*matrix\.shard\s*\}\}/g, '2')
    .replace(/\$\{?BLACKOUT_STORE\}?/g, 'postgres://blackout@db.internal:5432/blackout');
}

function commandsIn(file: string): string[][] {
  const text = readFileSync(file, 'utf8');
  const found: string[][] = [];
  for (const doc of parseAllDocuments(text)) {
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (!v || typeof v !== 'object') return;
      const o = v as Record<string, unknown>;
      // a container: command + args
      if (Array.isArray(o.command) && o.command[0] === 'blackout') found.push([...(o.command as string[]).slice(1), ...((o.args as string[] | undefined) ?? [])].map((a) => expand(String(a))));
      // a CI step: run script lines
      if (typeof o.run === 'string') {
        for (const line of o.run.split('\n')) {
          const w = words(expand(line.trim()));
          const at = w[0] === 'npx' && w[1] === 'blackout' ? 2 : w[0] === 'blackout' ? 1 : -1;
          if (at > 0) found.push(w.slice(at));
        }
      }
      Object.values(o).forEach(walk);
    };
    walk(doc.toJS());
  }
  return found;
}

/** parses argv with the real command tree; the action only checks what the real one validates first */
async function accepts(argv: string[]): Promise<string | null> {
  const program = buildProgram();
  let problem: string | null = null;
  const check = (cmd: Command) => {
    cmd.configureOutput({ writeErr: (s) => (problem = (problem ?? '') + s), writeOut: () => {} });
    cmd.action((...args: unknown[]) => {
      const opts = args[args.length - 2] as Record<string, string | undefined>;
      try {
        if (opts.shard) parseShard(opts.shard);
        if (opts.store) checkStoreUrl(opts.store);
        if (opts.retryAfter) parseDurationOpt(opts.retryAfter, '--retry-after');
      } catch (e) {
        problem = (e as Error).message;
      }
    });
    cmd.commands.forEach(check);
  };
  program.commands.forEach(check);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    problem ??= (e as Error).message;
  }
  return problem;
}

describe('examples', () => {
  const files = [...readdirSync(join(EX, 'kubernetes')).map((f) => join(EX, 'kubernetes', f)), ...readdirSync(join(EX, 'ci')).map((f) => join(EX, 'ci', f))];
  it('has the manifests: an Indexed Job for shards, a Deployment for workers, a CI matrix', () => {
    const all = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    expect(all).toMatch(/completionMode: Indexed/);
    expect(all).toMatch(/kind: Deployment/);
    expect(all).toMatch(/matrix:/);
  });

  it("shards a sweep and a fleet, each in an Indexed Job and a CI matrix; the merge takes every shard's folder; a fleet has a lane for each shard", () => {
    const kinds = new Set<string>();
    for (const f of files) {
      const cmds = commandsIn(f);
      for (const run of cmds.filter((c) => c[0] === 'run' && (c.includes('--shard') || c.includes('--shard-count')))) {
        const total = run.includes('--shard') ? parseShard(run[run.indexOf('--shard') + 1]!).total : Number(run[run.indexOf('--shard-count') + 1]);
        // a pod's /fleet/ is the ConfigMap made from examples/ (see the manifest)
        const file = join(ROOT, run[1]!.replace(/^\/fleet\//, 'examples/'));
        const fleet = existsSync(file) && isFleetFile(file);
        kinds.add(`${fleet ? 'fleet' : 'sweep'} ${f.includes('/kubernetes/') ? 'Indexed Job' : 'CI matrix'}`);
        if (fleet) {
          const plan = loadFleet(file);
          expect(new Set(plan.jobs.map((j) => j.lane)).size, `${f}: more shards than lanes leaves shards without a job`).toBeGreaterThanOrEqual(total);
        } else if (f.includes('/kubernetes/')) expect(run[1], f).toMatch(/^\/suites\//);
        const merges = cmds.filter((c) => c[0] === 'merge');
        expect(merges, f).toHaveLength(1);
        const folders = merges[0]!.slice(1).filter((a, i, all) => !a.startsWith('-') && all[i - 1] !== '--out' && all[i - 1] !== '-o');
        expect(folders, f).toHaveLength(total);
      }
    }
    expect([...kinds].sort()).toEqual(['fleet CI matrix', 'fleet Indexed Job', 'sweep CI matrix', 'sweep Indexed Job']);
  });

  for (const f of files) {
    it(`every blackout command in ${f.slice(EX.length + 1)} is accepted by the CLI`, async () => {
      const cmds = commandsIn(f);
      expect(cmds.length).toBeGreaterThan(0);
      for (const argv of cmds) expect(await accepts(argv), argv.join(' ')).toBeNull();
    });
  }

  it('the check can fail: a wrong option, a bad shard, a bad store are refused', async () => {
    expect(await accepts(['run', 's.yaml', '--shards', '2'])).toMatch(/unknown option/);
    expect(await accepts(['run', 's.yaml', '--shard', '3/2'])).toMatch(/shard index/);
    expect(await accepts(['worker', '--store', 'http://x'])).toMatch(/not postgres/);
    expect(await accepts(['merge', 'a'])).toMatch(/required option/);
  });

  it('the example fleet file plans: every target × suite a job, lanes per hypervisor limit', () => {
    const plan = loadFleet(join(EX, 'fleet.yaml'));
    expect(plan.jobs).toHaveLength(3);
    const lanes = plan.jobs.map((j) => j.lane);
    // hv-a has two targets and a limit of 2: two lanes; hv-b one
    expect(new Set(lanes.filter((l) => l.startsWith('hypervisor:hv-a'))).size).toBe(2);
    expect(plan.jobs.find((j) => j.target === 'crm-app')!.suiteName).toBe('CRM quick migration (silver)');
    // the template gives each target its own VM on its own hypervisor (a real estate's injector, not the lab's)
    expect(plan.jobs.find((j) => j.target === 'hr-app')!.suite.injector).toMatchObject({ kind: 'libvirt', domain: 'hr-app', mode: 'save', ssh: { host: 'hv-b.example.internal' } });
  });
});
