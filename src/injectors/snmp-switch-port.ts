/**
 * snmp-switch-port: a managed switch's port shut and re-opened over SNMP
 * (IF-MIB ifAdminStatus down(2) / up(1)), v2c or v3 — a real cable pull as the
 * server's NIC sees it (link down), done by the switch.
 *
 *   injector:
 *     kind: snmp-switch-port
 *     host: 10.0.0.2                     # the switch's management address
 *     version: "2c"                      # or "3"
 *     community: { env: SNMP_COMMUNITY }  # v2c: the write community
 *     v3: { user: ops, level: authPriv, authProtocol: sha, authKey: { env: SNMP_AUTH }, privProtocol: aes, privKey: { file: /run/secrets/snmp-priv } }
 *     ifName: "Gi1/0/3"                  # or ifIndex: 3 (ifName, else ifDescr, is looked up)
 *
 * Guaranteed restore: a detached watchdog process on this machine (it gets its
 * orders and secrets on stdin) sets the port up at the deadline if the harness
 * died; a normal restore kills it. Caveat: a switch port cannot restore itself,
 * so if this machine loses power mid-cut the port stays down.
 */
import { spawn } from 'node:child_process';
import { spawnWithoutSendLease } from '../lab/lease.ts';
import { childEnv } from '../transport/child-env.ts';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { duration } from '../core/schema-util.ts';
import { readSecret, secretPlaceholder, type SecretRef } from '../transport/ssh-exec.ts';
import { IF_ADMIN_STATUS, IF_DESCR, IF_NAME, IF_OPER_STATUS, openSession, snmpGet, snmpSetInt, snmpWalk, type SnmpTarget } from '../transport/snmp.ts';
import { scrub } from '../core/secrets.ts';
import { secretSchema } from './shared/remote.ts';
import type { CutInstant, InjectorDefinition, Instant } from '../core/injector.ts';

const schema = z
  .strictObject({
    kind: z.literal('snmp-switch-port').describe('the injector kind'),
    host: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$|^[0-9A-Fa-f:.]+$/, 'expected a host name or an IP address')
      .describe("the switch's management address"),
    port: z.number().int().min(1).max(65535).default(161).describe('its SNMP port'),
    version: z.enum(['2c', '3']).default('2c').describe('the SNMP version: "2c" or "3"'),
    community: secretSchema.optional().describe('v2c: the write community, { env: NAME } or { file: PATH }'),
    v3: z
      .strictObject({
        user: z.string().min(1).max(64).describe('the SNMPv3 user'),
        level: z.enum(['noAuthNoPriv', 'authNoPriv', 'authPriv']).default('authPriv').describe('the SNMPv3 security level'),
        authProtocol: z.enum(['md5', 'sha', 'sha224', 'sha256', 'sha384', 'sha512']).default('sha').describe('the authentication protocol'),
        authKey: secretSchema.optional().describe('the authentication key, { env: NAME } or { file: PATH }'),
        privProtocol: z.enum(['des', 'aes', 'aes256b', 'aes256r']).default('aes').describe('the privacy (encryption) protocol'),
        privKey: secretSchema.optional().describe('the privacy key, { env: NAME } or { file: PATH }'),
      })
      .optional()
      .describe('version 3: { user, level, authProtocol, authKey, privProtocol, privKey }'),
    ifIndex: z
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1)
      .optional()
      .describe("the port's ifIndex (or give ifName)"),
    ifName: z.string().min(1).max(255).optional().describe('the port\'s name, e.g. "Gi1/0/3" (looked up as ifName, else ifDescr; or give ifIndex)'),
    timeout: duration({ min: 100, max: 60_000 }).default(3000).describe('the timeout of each SNMP request'),
    retries: z.number().int().min(0).max(10).default(1).describe('retries of each SNMP request'),
    grace: duration({ min: 0, max: 600_000 }).default(5000).describe('the watchdog sets the port up this long after the requested end if the harness died'),
  })
  .refine((c) => (c.ifIndex === undefined) !== (c.ifName === undefined), { message: 'give exactly one of ifIndex or ifName', path: ['ifIndex'] })
  .refine((c) => c.version !== '2c' || c.community, { message: 'SNMP v2c needs community: { env: NAME } or { file: PATH }', path: ['community'] })
  .refine((c) => c.version !== '3' || (c.v3 && (c.v3.level === 'noAuthNoPriv' || c.v3.authKey) && (c.v3.level !== 'authPriv' || c.v3.privKey)), {
    message: 'SNMP v3 needs v3: { user, authKey, privKey (for authPriv) }',
    path: ['v3'],
  });
export type SnmpSwitchPortConfig = z.infer<typeof schema>;

const WATCHDOG = fileURLToPath(new URL('./shared/snmp-watchdog.mjs', import.meta.url));

export const snmpSwitchPort: InjectorDefinition<SnmpSwitchPortConfig> = {
  kind: 'snmp-switch-port',
  summary: "a switch port's ifAdminStatus down/up over SNMP v2c/v3 (net-snmp), with a detached restore watchdog",
  schema,
  create(config, ctx) {
    const dry = ctx.dryRun;
    let ifIndex = config.ifIndex ?? null;
    let watchdogPid: number | null = null;
    let active = false;
    const secrets: string[] = [];
    const where = () => {
      const cred = config.version === '2c' ? `community ${secretPlaceholder(config.community as SecretRef)}` : `user ${config.v3!.user} ${config.v3!.level}`;
      return `snmp v${config.version} ${config.host}:${config.port} ${cred}`;
    };
    const target = (): SnmpTarget => {
      const read = (r: SecretRef | undefined, what: string) => {
        if (!r) return undefined;
        const v = readSecret(r, what);
        secrets.push(v);
        return v;
      };
      const v3 = config.v3;
      return {
        host: config.host,
        port: config.port,
        version: config.version,
        community: config.version === '2c' ? read(config.community, 'SNMP community') : undefined,
        user: v3?.user,
        level: v3?.level,
        authProtocol: v3?.authProtocol,
        authKey: read(v3?.authKey, 'SNMP v3 authKey'),
        privProtocol: v3?.privProtocol,
        privKey: read(v3?.privKey, 'SNMP v3 privKey'),
        timeoutMs: config.timeout,
        retries: config.retries,
      };
    };
    const oid = () => `${IF_ADMIN_STATUS}.${ifIndex ?? '<ifIndex of ' + config.ifName + '>'}`;
    const withSession = async <T>(f: (s: ReturnType<typeof openSession>) => Promise<T>): Promise<T> => {
      const s = openSession(target());
      s.on('error', () => {});
      try {
        return await f(s);
      } catch (e) {
        throw new Error(`${where()}: ${scrub((e as Error).message, secrets)}`);
      } finally {
        s.close();
      }
    };
    const setStatus = async (value: 1 | 2, label: string): Promise<{ before: number; t: number }> => {
      if (dry) {
        dry.transcript(`[${where()}] ${label}: SET ${oid()} INTEGER ${value} (${value === 2 ? 'down' : 'up'})`);
        const t = ctx.clock.now();
        return { before: t, t };
      }
      return withSession(async (s) => {
        const before = ctx.clock.now();
        await snmpSetInt(s, oid(), value);
        return { before, t: ctx.clock.now() };
      });
    };
    const killWatchdog = () => {
      if (watchdogPid !== null) {
        try {
          process.kill(watchdogPid, 'SIGKILL');
        } catch {
          /* it already fired */
        }
        watchdogPid = null;
      }
    };

    return {
      kind: 'snmp-switch-port',
      migration: 'none',
      dryRunCapable: true,
      describe: () => ({
        kind: 'snmp-switch-port',
        runsOn: where(),
        ifIndex: config.ifIndex,
        ifName: config.ifName,
        watchdog: `a detached process sets the port up ${config.grace} ms after the requested end if the harness died`,
      }),
      async preflight() {
        if (dry) {
          if (ifIndex === null) dry.transcript(`[${where()}] preflight: WALK ${IF_NAME} and ${IF_DESCR} for "${config.ifName}"`);
          dry.transcript(`[${where()}] preflight: GET ${oid()} (must be 1, up)`);
          return;
        }
        await withSession(async (s) => {
          if (ifIndex === null) {
            for (const base of [IF_NAME, IF_DESCR]) {
              const hit = (await snmpWalk(s, base)).find((v) => String(v.value) === config.ifName);
              if (hit) {
                ifIndex = Number(hit.oid.slice(base.length + 1));
                break;
              }
            }
            if (ifIndex === null) throw new Error(`no interface named "${config.ifName}" in ifName or ifDescr`);
          }
          const [admin] = await snmpGet(s, [oid()]);
          if (Number(admin!.value) !== 1) throw new Error(`port ${ifIndex} is administratively ${Number(admin!.value) === 2 ? 'down' : admin!.value} already`);
        });
      },
      async heal() {
        // a port left down by a dead run cannot be told from one shut on purpose (and the dead
        // run's watchdog sets it up): preflight refuses a port that is down, nothing to heal here
        return [];
      },
      async cut(requestedMs): Promise<CutInstant> {
        const delayMs = requestedMs + config.grace;
        if (dry) dry.transcript(`[local] arm watchdog: detached node ${WATCHDOG} (orders on stdin), SET ${oid()} INTEGER 1 after ${delayMs} ms`);
        else {
          const child = spawnWithoutSendLease(() => spawn(process.execPath, [WATCHDOG], { detached: true, stdio: ['pipe', 'ignore', 'ignore'], env: childEnv() }));
          child.stdin!.end(JSON.stringify({ target: target(), oid: oid(), value: 1, delayMs }));
          child.unref();
          watchdogPid = child.pid ?? null;
        }
        const armedAt = ctx.clock.now();
        active = true;
        const r = await setStatus(2, 'cut');
        return { before: r.before, t: r.t, deadline: armedAt + delayMs, detail: { mechanism: `ifAdminStatus down over ${where()}`, ifIndex, watchdogPid } };
      },
      async restore(): Promise<Instant> {
        if (!active) {
          const now = ctx.clock.now();
          return { before: now, t: now, detail: { nothingToRestore: true } };
        }
        let last: Error | null = null;
        for (let i = 1; i <= 3; i++) {
          try {
            const r = await setStatus(1, 'restore');
            active = false;
            killWatchdog();
            if (dry) dry.transcript('[local] disarm watchdog: kill PID');
            let oper: unknown = null;
            if (!dry) oper = await withSession(async (s) => (await snmpGet(s, [`${IF_OPER_STATUS}.${ifIndex}`]))[0]?.value).catch(() => null);
            return { before: r.before, t: r.t, detail: { attempts: i, ifOperStatusAfter: oper } };
          } catch (e) {
            last = e as Error;
            ctx.log(`snmp restore attempt ${i} failed: ${last.message}`);
          }
        }
        throw new Error(`restore failed 3 times (${last?.message}); the watchdog sets the port up at its deadline`);
      },
    };
  },
};
