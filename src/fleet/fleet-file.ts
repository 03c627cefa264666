/**
 * Fleet files: targets × suites → campaign jobs. A suite is a file or an
 * inline template; {{name}}, {{application}}, {{hypervisor}}, {{switch}} and
 * {{fields.X}} are filled from each target before the suite is validated, so
 * a bad fleet is refused at submit (exit 2, the field named) and never reaches
 * a worker. Every job gets a queue lane: one target's jobs share a lane (never
 * two blackouts on one target), and with `limits: { hypervisor: N }` the
 * targets of one hypervisor are dealt round robin onto N lanes (at most N
 * blackouts on it at once). The queue runs each lane's jobs one at a time.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve, extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { validateSuite, SuiteError, type Suite } from '../run/suite.ts';
import { createPlanner, type Sweep } from '../analysis/search.ts';

export class FleetError extends Error {}

const ident = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected letters, digits, . _ - (at most 64)');

const fleetSchema = z.strictObject({
  campaign: ident,
  limits: z.strictObject({ hypervisor: z.number().int().min(1).optional(), switch: z.number().int().min(1).optional() }).optional(),
  targets: z
    .array(
      z.strictObject({
        name: ident,
        application: z.string().min(1).max(200).optional(),
        hypervisor: z.string().min(1).max(200).optional(),
        switch: z.string().min(1).max(200).optional(),
        target: z.unknown(),
        fields: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
      }),
    )
    .min(1),
  suites: z.array(z.union([z.strictObject({ path: z.string().min(1) }), z.strictObject({ template: z.string().min(1) })])).min(1),
});
export type FleetFile = z.infer<typeof fleetSchema>;

export interface CampaignJob {
  /** unique in the campaign: target/suite */
  jobId: string;
  campaign: string;
  target: string;
  application: string;
  hypervisor: string | null;
  switch: string | null;
  /** the queue lane (graphile-worker queue_name): its jobs run one at a time */
  lane: string;
  suiteName: string;
  /** the suite as a plain object (validated), target filled in */
  suite: Record<string, unknown>;
  plannedTrials: number;
}

export interface CampaignPlan {
  campaign: string;
  limits: FleetFile['limits'];
  jobs: CampaignJob[];
}

/** the job's id in the store and the queue's job_key (and a fleet shard's run-start): unique across campaigns */
export function jobKey(j: Pick<CampaignJob, 'campaign' | 'jobId'>): string {
  return `${j.campaign}:${j.jobId}`;
}

function fill(template: string, where: string, t: FleetFile['targets'][number]): string {
  return template.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_, key: string) => {
    const v =
      key === 'name'
        ? t.name
        : key === 'application'
          ? (t.application ?? t.name)
          : key === 'hypervisor'
            ? t.hypervisor
            : key === 'switch'
              ? t.switch
              : key.startsWith('fields.')
                ? t.fields?.[key.slice(7)]
                : undefined;
    if (v === undefined) throw new FleetError(`${where}: {{${key}}} is not a field of target ${t.name} (name, application, hypervisor, switch, fields.*)`);
    return String(v);
  });
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 48) || 'suite';

export function planFleet(raw: unknown, baseDir: string): CampaignPlan {
  const parsed = fleetSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new FleetError(`fleet: ${i.path.join('.') || '(file)'}: ${i.message}`);
  }
  const f = parsed.data;
  if (f.limits?.hypervisor && f.limits?.switch) {
    throw new FleetError('fleet: limits: give hypervisor or switch, not both (a job runs in one queue lane)');
  }
  const names = new Set<string>();
  for (const [i, t] of f.targets.entries()) {
    if (names.has(t.name)) throw new FleetError(`fleet: targets.${i}.name: "${t.name}" appears twice`);
    names.add(t.name);
    if (t.target === undefined) throw new FleetError(`fleet: targets.${i}.target: missing (as a suite's target: lab, { lab: NAME } or { host, … })`);
  }
  const texts = f.suites.map((s, i) => {
    if ('template' in s) return { where: `suites.${i}.template`, text: s.template };
    const path = resolve(baseDir, s.path);
    if (!existsSync(path)) throw new FleetError(`fleet: suites.${i}.path: ${path} not found`);
    if (!['.yaml', '.yml'].includes(extname(path))) throw new FleetError(`fleet: suites.${i}.path: a fleet suite must be YAML (it is a template)`);
    return { where: `suites.${i}.path (${s.path})`, text: readFileSync(path, 'utf8') };
  });
  const limitBy = f.limits?.hypervisor ? 'hypervisor' : f.limits?.switch ? 'switch' : null;
  const limitN = f.limits?.hypervisor ?? f.limits?.switch ?? 0;
  // lanes: round robin over the targets of each hypervisor/switch, in name order (deterministic)
  const laneOf = new Map<string, string>();
  const groups = new Map<string, string[]>();
  for (const t of f.targets) {
    const g = limitBy ? t[limitBy] : undefined;
    if (!g) {
      laneOf.set(t.name, `target:${t.name}`);
      continue;
    }
    groups.set(g, [...(groups.get(g) ?? []), t.name]);
  }
  for (const [g, members] of groups) {
    members.sort().forEach((m, i) => laneOf.set(m, `${limitBy}:${g}#${(i % limitN) + 1}`));
  }
  const jobs: CampaignJob[] = [];
  const ids = new Set<string>();
  for (const t of f.targets) {
    for (const s of texts) {
      const where = `${s.where} for target ${t.name}`;
      let suiteRaw: unknown;
      try {
        suiteRaw = parseYaml(fill(s.text, where, t), { uniqueKeys: true, maxAliasCount: 100 });
      } catch (e) {
        if (e instanceof FleetError) throw e;
        throw new FleetError(`fleet: ${where}: YAML: ${(e as Error).message.split('\n')[0]}`);
      }
      if (!suiteRaw || typeof suiteRaw !== 'object' || Array.isArray(suiteRaw)) throw new FleetError(`fleet: ${where}: expected a suite mapping`);
      const obj = { ...(suiteRaw as Record<string, unknown>) };
      obj.target ??= t.target;
      let suite: Suite;
      try {
        suite = validateSuite(obj, where);
      } catch (e) {
        if (e instanceof SuiteError) throw new FleetError(`fleet: invalid suite ${e.message}`);
        throw e;
      }
      if (suite.sweep?.mode === 'search') throw new FleetError(`fleet: ${where}: an adaptive search cannot be resumed by another worker; use a list of blackouts`);
      const sweep: Sweep | null = suite.sweep ?? (suite.blackouts.length ? { mode: 'list', lengths: suite.blackouts, repeat: 1 } : null);
      if (!sweep) throw new FleetError(`fleet: ${where}: blackouts: give the lengths (a campaign plans its trials up front)`);
      let jobId = `${t.name}/${slug(suite.name)}`;
      for (let k = 2; ids.has(jobId); k++) jobId = `${t.name}/${slug(suite.name)}-${k}`;
      ids.add(jobId);
      jobs.push({
        jobId,
        campaign: f.campaign,
        target: t.name,
        application: t.application ?? t.name,
        hypervisor: t.hypervisor ?? null,
        switch: t.switch ?? null,
        lane: laneOf.get(t.name)!,
        suiteName: suite.name,
        suite: obj,
        plannedTrials:
          createPlanner(
            sweep,
            suite.probes.map((p) => p.name),
          ).plannedTrials ?? 0,
      });
    }
  }
  return { campaign: f.campaign, limits: f.limits, jobs };
}

export function loadFleet(file: string): CampaignPlan {
  const path = resolve(file);
  if (!existsSync(path)) throw new FleetError(`${file}: not found`);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'), { uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    throw new FleetError(`${file}: YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return planFleet(raw, dirname(path));
}
