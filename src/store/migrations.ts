/**
 * The results store's schema, as numbered migrations applied in order by the
 * tool itself (never by hand). Each one runs in its own transaction under an
 * advisory lock, so many workers starting at once apply it exactly once.
 * Append new migrations; never edit a released one's SQL (its name is a label,
 * written into schema_migrations when applied and never compared).
 */
import type { ClientBase } from 'pg';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SCHEMA = 'blackout';

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'runs, trials, probe results, raw events',
    sql: `
      create table ${SCHEMA}.runs (
        run_id text primary key,
        -- the events' compact key (a text id on every event row would halve the ingest rate)
        run_key bigserial unique not null,
        suite text not null,
        host text not null,
        target_name text,
        target_address text,
        injector_kind text,
        started_at timestamptz not null,
        wall_ms double precision not null,
        out_dir text,
        campaign text,
        job_id text,
        attempt int,
        job_target text,
        worker text,
        shard_index int,
        shard_total int,
        run_start jsonb not null,
        ended_at timestamptz,
        exit_code int,
        reason text,
        passed boolean,
        summary jsonb,
        -- events stored so far (they carry seq 0 … events_stored-1): where a reconnecting sink resumes
        events_stored bigint not null default 0
      );
      create index runs_campaign on ${SCHEMA}.runs (campaign, job_id);
      create index runs_suite on ${SCHEMA}.runs (suite, started_at);
      create table ${SCHEMA}.trials (
        run_id text not null references ${SCHEMA}.runs on delete cascade,
        trial int not null,
        requested_ms double precision not null,
        injected_ms double precision,
        campaign text,
        job_id text,
        result jsonb not null,
        primary key (run_id, trial)
      );
      -- a campaign job's planned trial is counted once, whichever attempt ran it
      create unique index trials_job_trial on ${SCHEMA}.trials (job_id, trial) where job_id is not null;
      create table ${SCHEMA}.probe_results (
        run_id text not null,
        trial int not null,
        probe text not null,
        kind text not null,
        outcome text not null,
        observed_outage_ms double precision,
        reason text,
        primary key (run_id, trial, probe),
        foreign key (run_id, trial) references ${SCHEMA}.trials on delete cascade
      );
      create table ${SCHEMA}.events (
        run_key bigint not null,
        seq bigint not null,
        t double precision not null,
        type text not null,
        trial int,
        probe text,
        -- json, not jsonb: checked but not decomposed on the way in (ingest speed); ->> works on both
        body json not null
      );
      -- a run's events arrive in seq order in large batches: a BRIN index finds them at a fraction
      -- of a btree's cost per inserted row (ingest is the hot path; reading a run back is rare)
      create index events_run_seq on ${SCHEMA}.events using brin (run_key, seq);
    `,
  },
  {
    version: 2,
    name: 'campaigns and their jobs (the queue itself is graphile-worker)',
    sql: `
      create table ${SCHEMA}.campaigns (
        name text primary key,
        created_at timestamptz not null default now(),
        fleet jsonb not null
      );
      create table ${SCHEMA}.campaign_jobs (
        job_id text primary key,
        campaign text not null references ${SCHEMA}.campaigns on delete cascade,
        target text not null,
        suite_name text not null,
        application text not null,
        queue_job_id text,
        state text not null default 'waiting',
        worker text,
        attempt int not null default 0,
        planned_trials int not null,
        run_ids text[] not null default '{}',
        out_dirs text[] not null default '{}',
        error text,
        updated_at timestamptz not null default now()
      );
      create index campaign_jobs_campaign on ${SCHEMA}.campaign_jobs (campaign);
      create table ${SCHEMA}.campaign_log (
        id bigserial primary key,
        campaign text not null,
        job_id text,
        at timestamptz not null default now(),
        worker text,
        message text not null
      );
    `,
  },
  {
    version: 3,
    name: "worker heartbeats (a dead worker's jobs are released after --retry-after)",
    sql: `
      create table ${SCHEMA}.worker_heartbeats (
        worker_id text primary key,
        host text not null,
        pid int not null,
        campaign text,
        job_id text,
        started_at timestamptz not null default now(),
        last_seen timestamptz not null default now()
      );
    `,
  },
  {
    version: 4,
    name: "Allure history per suite, target and shard (a run's successor may run on another host)",
    sql: `
      create table ${SCHEMA}.allure_history (
        run_id text primary key,
        suite text not null,
        -- '' when the run had no target name, and for a whole run (not a shard)
        target text not null,
        shard text not null,
        wall_ms double precision not null,
        -- what the next run carries: this run's history with its own results folded in
        history jsonb not null,
        trend jsonb not null
      );
      create index allure_history_previous on ${SCHEMA}.allure_history (suite, target, shard, wall_ms);
    `,
  },
];

/** Applies every migration not yet applied; returns the versions applied now. */
export async function migrate(client: ClientBase): Promise<number[]> {
  const applied: number[] = [];
  await client.query('begin');
  try {
    // one migrator at a time across every process on this database
    await client.query(`select pg_advisory_xact_lock(hashtext('blackout-store-migrations'))`);
    await client.query(`create schema if not exists ${SCHEMA}`);
    await client.query(`create table if not exists ${SCHEMA}.schema_migrations (version int primary key, name text not null, applied_at timestamptz not null default now())`);
    const { rows } = await client.query<{ version: number }>(`select version from ${SCHEMA}.schema_migrations`);
    const have = new Set(rows.map((r) => r.version));
    const newest = Math.max(0, ...have);
    const known = Math.max(...migrations.map((m) => m.version));
    if (newest > known) throw new Error(`the results store has schema version ${newest}; this blackout knows up to ${known} (upgrade blackout)`);
    for (const m of migrations) {
      if (have.has(m.version)) continue;
      await client.query(m.sql);
      await client.query(`insert into ${SCHEMA}.schema_migrations (version, name) values ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('commit');
  } catch (e) {
    await client.query('rollback').catch(() => {});
    throw e;
  }
  return applied;
}
