/**
 * A small SNMP client over net-snmp for the switch-port adapter and its
 * watchdog: v2c (community) or v3 (user, auth/priv keys), every call bounded
 * by a timeout and retries, secrets only from env/file (see ssh-exec.ts).
 */
import snmp from 'net-snmp';
import type { Session, Varbind } from 'net-snmp';

export const IF_ADMIN_STATUS = '1.3.6.1.2.1.2.2.1.7';
export const IF_OPER_STATUS = '1.3.6.1.2.1.2.2.1.8';
export const IF_DESCR = '1.3.6.1.2.1.2.2.1.2';
export const IF_NAME = '1.3.6.1.2.1.31.1.1.1.1';

/** What a session needs, secrets already read. */
export interface SnmpTarget {
  host: string;
  port: number;
  version: '2c' | '3';
  community?: string;
  user?: string;
  level?: 'noAuthNoPriv' | 'authNoPriv' | 'authPriv';
  authProtocol?: 'md5' | 'sha' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
  authKey?: string;
  privProtocol?: 'des' | 'aes' | 'aes256b' | 'aes256r';
  privKey?: string;
  timeoutMs: number;
  retries: number;
}

export function openSession(t: SnmpTarget): Session {
  const options = { port: t.port, retries: t.retries, timeout: t.timeoutMs, transport: t.host.includes(':') ? 'udp6' : 'udp4' };
  if (t.version === '2c') return snmp.createSession(t.host, t.community ?? '', { ...options, version: snmp.Version2c });
  const level = t.level ?? 'authPriv';
  return snmp.createV3Session(
    t.host,
    {
      name: t.user ?? '',
      level: snmp.SecurityLevel[level]!,
      ...(level !== 'noAuthNoPriv' ? { authProtocol: snmp.AuthProtocols[t.authProtocol ?? 'sha'], authKey: t.authKey } : {}),
      ...(level === 'authPriv' ? { privProtocol: snmp.PrivProtocols[t.privProtocol ?? 'aes'], privKey: t.privKey } : {}),
    },
    { ...options, version: snmp.Version3 },
  );
}

function check(varbinds: Varbind[]): Varbind[] {
  for (const v of varbinds) if (snmp.isVarbindError(v)) throw new Error(`${v.oid}: ${snmp.varbindError(v)}`);
  return varbinds;
}

export function snmpGet(s: Session, oids: string[]): Promise<Varbind[]> {
  return new Promise((res, rej) =>
    s.get(oids, (e, vb) =>
      e
        ? rej(e)
        : (() => {
            try {
              res(check(vb));
            } catch (x) {
              rej(x);
            }
          })(),
    ),
  );
}

export function snmpSetInt(s: Session, oid: string, value: number): Promise<Varbind[]> {
  return new Promise((res, rej) =>
    s.set([{ oid, type: snmp.ObjectType.Integer, value }], (e, vb) =>
      e
        ? rej(e)
        : (() => {
            try {
              res(check(vb));
            } catch (x) {
              rej(x);
            }
          })(),
    ),
  );
}

export function snmpWalk(s: Session, oid: string): Promise<Varbind[]> {
  return new Promise((res, rej) => {
    const out: Varbind[] = [];
    s.subtree(
      oid,
      20,
      (vbs) => void out.push(...vbs.filter((v) => !snmp.isVarbindError(v))),
      (e) => (e ? rej(e) : res(out)),
    );
  });
}
