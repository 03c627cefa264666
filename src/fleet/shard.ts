/**
 * Static shards: `run --shard i/n` runs every n-th planned trial of a list
 * sweep, starting at the i-th (round robin, so each shard gets a spread of
 * lengths and the shards take about as long as each other). The split is a
 * pure function of the plan: the same suite on any machine gives the same
 * share, so a CI matrix or a Kubernetes Indexed Job needs no coordination.
 */
export interface Shard {
  /** 1-based */
  index: number;
  total: number;
}

export class ShardError extends Error {}

const MAX_SHARDS = 10_000;

/** "2/3" → { index: 2, total: 3 } */
export function parseShard(spec: string, field = '--shard'): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!m) throw new ShardError(`${field}: "${spec}" is not i/n (e.g. 1/3)`);
  const index = Number(m[1]);
  const total = Number(m[2]);
  if (total < 1 || total > MAX_SHARDS) throw new ShardError(`${field}: the shard count must be 1…${MAX_SHARDS}, got ${total}`);
  if (index < 1 || index > total) throw new ShardError(`${field}: the shard index must be 1…${total}, got ${index}`);
  return { index, total };
}

/**
 * The shard of this process: `--shard i/n`, else a Kubernetes Indexed Job's
 * JOB_COMPLETION_INDEX (0-based) with the count from `--shard-count` or
 * BLACKOUT_SHARD_COUNT. Null when neither is given.
 */
export function resolveShard(opt: { shard?: string; shardCount?: string }, env: NodeJS.ProcessEnv = process.env): Shard | null {
  if (opt.shard !== undefined) return parseShard(opt.shard);
  const idx = env.JOB_COMPLETION_INDEX;
  const count = opt.shardCount ?? env.BLACKOUT_SHARD_COUNT;
  if (idx === undefined || idx === '') {
    if (opt.shardCount !== undefined) throw new ShardError('--shard-count: needs JOB_COMPLETION_INDEX in the environment (or use --shard i/n)');
    return null;
  }
  if (count === undefined || count === '') {
    throw new ShardError("JOB_COMPLETION_INDEX is set: give the number of shards with --shard-count N or BLACKOUT_SHARD_COUNT (the Job's completions)");
  }
  if (!/^\d+$/.test(idx.trim())) throw new ShardError(`JOB_COMPLETION_INDEX: "${idx}" is not a non-negative integer`);
  if (!/^\d+$/.test(count.trim())) throw new ShardError(`${opt.shardCount !== undefined ? '--shard-count' : 'BLACKOUT_SHARD_COUNT'}: "${count}" is not a positive integer`);
  return parseShard(`${Number(idx) + 1}/${Number(count)}`, 'JOB_COMPLETION_INDEX');
}

/** Whether planned trial k (0-based) belongs to the shard. */
export function inShard(shard: Shard, k: number): boolean {
  return k % shard.total === shard.index - 1;
}

/** The planned trial numbers of a shard, for a plan of `planned` trials. */
export function shardTrials(shard: Shard, planned: number): number[] {
  const out: number[] = [];
  for (let k = shard.index - 1; k < planned; k += shard.total) out.push(k);
  return out;
}
