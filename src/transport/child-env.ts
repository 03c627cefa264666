/**
 * The environment a child process of the harness gets: a short allow-list
 * (where programs are, locale, time zone, who and where we are), never the
 * harness's whole environment. A suite's secrets live in environment variables
 * (passwordEnv: …); a `ping`, an `nft` or a user's cut command has no business
 * seeing them.
 */
const KEEP = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'LC_NUMERIC',
  'TZ',
  'TMPDIR',
  'TERM',
  'SSH_AUTH_SOCK',
  'XDG_RUNTIME_DIR',
  'ODBCINI',
  'ODBCSYSINI',
];

export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of KEEP) if (process.env[k] !== undefined) env[k] = process.env[k];
  env.PATH ??= '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}
