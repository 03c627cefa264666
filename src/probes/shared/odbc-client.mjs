// The ODBC application of the odbc probe, run as its own process: the `odbc`
// package (unixODBC + the PostgreSQL ODBC driver) blocks a libuv worker
// thread for as long as a driver call blocks, and a call that waits for a
// dead network cannot be cancelled from JavaScript. As its own process it can
// always be ended (by its PID) at the end of a trial — the "ODBC clients had
// to be restarted" of the seeds.
//
// Protocol (Node IPC): the parent sends
//   { id, op: 'connect', connectionString, loginTimeout, connectionTimeout }
//   { id, op: 'query', sql, params, timeout }
//   { id, op: 'close' }
// and gets { id, ok: true, rows? } or { id, ok: false, error: { message, state?, code? } }.
// The DSN lives in a private odbc.ini named by the ODBCINI / ODBCSYSINI
// environment the parent set for this process (never /etc).
// `odbc` is an optional dependency: a native addon whose install script
// fetches a prebuilt binary or, failing that, builds one against unixODBC
// (which fails without unixodbc-dev and a compiler, and which an npm that runs
// only allowed install scripts skips). A blackout installed without it works
// but for this probe: say so, in the one line the parent shows as the probe's
// error, and end.
let odbc;
try {
  odbc = (await import('odbc')).default;
} catch (e) {
  const cause = String(e?.message ?? e).split('\n')[0];
  process.stderr.write(
    `the odbc probe needs the npm package "odbc" with its native addon, which is not usable here (npm installs it with blackout when it may run its install script, e.g. \`npm install -g --allow-scripts=odbc …\`; building it needs unixodbc-dev and a C++ compiler): ${cause}\n`,
  );
  process.exit(3);
}

let conn = null;

function errorOf(e) {
  const first = e?.odbcErrors?.[0];
  const text = first ? e.odbcErrors.map((x) => `[${x.state}] ${x.message}`).join('; ') : (e?.message ?? String(e));
  return { message: text, ...(first ? { state: first.state, code: first.code } : {}) };
}

process.on('message', async (m) => {
  const reply = (r) => process.send?.({ id: m.id, ...r });
  try {
    if (m.op === 'connect') {
      conn = await odbc.connect({ connectionString: m.connectionString, loginTimeout: m.loginTimeout, connectionTimeout: m.connectionTimeout });
      reply({ ok: true });
    } else if (m.op === 'query') {
      if (!conn) throw new Error('not connected');
      const rows = await conn.query(m.sql, m.params ?? [], m.timeout ? { timeout: m.timeout } : undefined);
      // bigint columns (e.g. bigint seq) as numbers: IPC is JSON
      reply({ ok: true, rows: Array.from(rows, (r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]))) });
    } else if (m.op === 'close') {
      const c = conn;
      conn = null;
      await c?.close();
      reply({ ok: true });
      process.disconnect?.();
    }
  } catch (e) {
    reply({ ok: false, error: errorOf(e) });
  }
});
process.on('disconnect', () => process.exit(0));
