// The snmp-switch-port adapter's watchdog: a detached process that outlives the
// harness. It reads its orders (JSON, secrets included) from stdin — never from
// its command line or environment, where `ps` would show them — sleeps until the
// deadline, then sets the port's ifAdminStatus back to up (1), retrying for up to
// a minute. The harness kills it by PID after a normal restore.
import snmp from 'net-snmp';

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const o = JSON.parse(input);
  setTimeout(() => restore(o, 0), Math.max(0, o.delayMs));
});

function session(t) {
  const options = { port: t.port, retries: t.retries, timeout: t.timeoutMs, transport: t.host.includes(':') ? 'udp6' : 'udp4' };
  if (t.version === '2c') return snmp.createSession(t.host, t.community ?? '', { ...options, version: snmp.Version2c });
  const level = t.level ?? 'authPriv';
  return snmp.createV3Session(
    t.host,
    {
      name: t.user,
      level: snmp.SecurityLevel[level],
      ...(level !== 'noAuthNoPriv' ? { authProtocol: snmp.AuthProtocols[t.authProtocol ?? 'sha'], authKey: t.authKey } : {}),
      ...(level === 'authPriv' ? { privProtocol: snmp.PrivProtocols[t.privProtocol ?? 'aes'], privKey: t.privKey } : {}),
    },
    { ...options, version: snmp.Version3 },
  );
}

function restore(o, attempt) {
  const s = session(o.target);
  s.on('error', () => {});
  s.set([{ oid: o.oid, type: snmp.ObjectType.Integer, value: o.value }], (err, vbs) => {
    s.close();
    const bad = err || (vbs && vbs.some((v) => snmp.isVarbindError(v)));
    if (!bad) process.exit(0);
    if (attempt >= 30) process.exit(1);
    setTimeout(() => restore(o, attempt + 1), 2000);
  });
}
