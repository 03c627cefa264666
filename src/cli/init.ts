/**
 * `blackout init HOST`: which well-known services answer on a target, and a
 * starter suite with a matching probe for each.
 *
 * It sends nothing but TCP connection attempts (each closed as soon as it
 * connects, with a short timeout) and never injects anything. Secrets in the
 * suite are environment variable references, never values. On a lab target
 * (`lab`, or `--lab NAME`) it also tries the ports the lab's services listen
 * on, and its probes take the lab's credentials from the target as every lab
 * suite does.
 */
import { connect } from 'node:net';
import { Document, isMap, isSeq, type YAMLMap } from 'yaml';
import { DEFAULT_LAB, readLabState, type LabState } from '../lab/lab.ts';

export interface PortCheck {
  port: number;
  open: boolean;
  /** ECONNREFUSED, timeout, … when closed */
  detail: string;
  ms: number;
}

/** One TCP connection attempt: open when it connects (then closed at once). */
export function checkPort(host: string, port: number, timeoutMs: number): Promise<PortCheck> {
  const started = Date.now();
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (open: boolean, detail: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ port, open, detail, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done(false, `no answer within ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => done(true, 'open'));
    s.once('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

/** Tries every port, a few at a time; results in port order. */
export async function checkPorts(host: string, ports: number[], timeoutMs: number, parallel = 16): Promise<PortCheck[]> {
  const out: PortCheck[] = [];
  const queue = [...new Set(ports)].sort((a, b) => a - b);
  await Promise.all(
    Array.from({ length: Math.min(parallel, queue.length) }, async () => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) out.push(await checkPort(host, p, timeoutMs));
    }),
  );
  return out.sort((a, b) => a.port - b.port);
}

interface ProbeTemplate {
  probe: Record<string, unknown>;
  /** a comment above it in the suite: what to fill in, what it does on the server */
  note: string;
  /** the environment variables it reads */
  env?: string[];
}

interface KnownService {
  service: string;
  /** a probe for a real host */
  real(host: string, port: number): ProbeTemplate;
}

const url = (scheme: string, host: string, port: number, std: number) => `${scheme}://${host.includes(':') ? `[${host}]` : host}${port === std ? '' : `:${port}`}/`;
const hold = (name: string, port: number, what: string): ProbeTemplate => ({
  // idle 1 s: the kernel's first keepalive answer comes within a usual warm-up
  probe: { name, kind: 'tcp', mode: 'hold', port, keepalive: { idle: '1s', interval: '1s', count: 5 } },
  note: `${what}: an idle connection held by kernel keepalives (no login). For real sessions use a client probe (odbc with the vendor's driver, …).`,
});
// a starter accepts the usual answers of a site's front page; tighten it to what yours returns
const WEB_STATUS = [200, 204, 301, 302, 303, 307, 308, 401, 403];

/** Well-known ports, what usually answers there, and a starter probe for each. */
export const WELL_KNOWN: Record<number, KnownService> = {
  21: {
    service: 'FTP',
    real: (_h, port) => ({
      probe: { name: 'ftp', kind: 'tcp', mode: 'exchange', port, greeting: '^220', send: 'NOOP\r\n', expect: '^200' },
      note: 'FTP control connection: NOOP every interval, before login',
    }),
  },
  22: {
    service: 'SSH',
    real: () => ({
      probe: { name: 'ssh', kind: 'console', user: 'change_me', passwordEnv: 'BLACKOUT_SSH_PASSWORD' },
      note: 'an interactive SSH session (ssh2): set user, and a key (privateKeyFile) or the password in $BLACKOUT_SSH_PASSWORD; pin the host key with hostKey: "SHA256:…" (ssh-keyscan HOST | ssh-keygen -lf -) or knownHostsFile',
      env: ['BLACKOUT_SSH_PASSWORD'],
    }),
  },
  25: {
    service: 'SMTP',
    real: (_h, port) => ({ probe: { name: 'smtp', kind: 'tcp', mode: 'exchange', port, greeting: '^220', send: 'NOOP\r\n', expect: '^250' }, note: 'SMTP: NOOP every interval (no mail is sent)' }),
  },
  80: {
    service: 'HTTP',
    real: (host, port) => ({
      probe: { name: 'http', kind: 'http', url: url('http', host, port, 80), expect: { status: WEB_STATUS } },
      note: 'a keep-alive HTTP client: set the URL of a page your users need, its status and a body pattern (expect.body)',
    }),
  },
  143: {
    service: 'IMAP',
    real: (_h, port) => ({ probe: { name: 'imap', kind: 'tcp', mode: 'exchange', port, greeting: '^\\* OK', send: 'a1 NOOP\r\n', expect: 'a1 OK' }, note: 'IMAP: NOOP every interval, before login' }),
  },
  389: { service: 'LDAP', real: (_h, port) => hold('ldap', port, 'LDAP') },
  443: {
    service: 'HTTPS',
    real: (host, port) => ({
      probe: { name: 'https', kind: 'http', url: url('https', host, port, 443), expect: { status: WEB_STATUS } },
      note: 'a keep-alive HTTPS client, certificate verified against the system CAs: for a private CA add tls: { ca: FILE }, for a self-signed certificate tls: { pin: "sha256:…" } (openssl s_client -connect HOST:443 </dev/null | openssl x509 -noout -fingerprint -sha256)',
    }),
  },
  445: {
    service: 'SMB',
    real: () => ({
      probe: { name: 'smb', kind: 'smb', share: 'change_me', user: 'change_me', passwordEnv: 'BLACKOUT_SMB_PASSWORD', file: 'a-large-file.bin' },
      note: 'a file copy with smbclient: set the share, a large file on it (it is read, not written), the user, and the password in $BLACKOUT_SMB_PASSWORD',
      env: ['BLACKOUT_SMB_PASSWORD'],
    }),
  },
  1433: { service: 'SQL Server', real: (_h, port) => hold('mssql', port, 'SQL Server') },
  1521: { service: 'Oracle', real: (_h, port) => hold('oracle', port, 'Oracle listener') },
  // an unauthenticated MySQL connection is closed after the server's connect_timeout (10 s): a real client session
  3306: {
    service: 'MySQL/MariaDB',
    real: (_h, port) => ({
      probe: { name: 'mysql', kind: 'odbc', driver: 'MariaDB Unicode', port, database: 'change_me', user: 'change_me', passwordEnv: 'BLACKOUT_MYSQL_PASSWORD' },
      note: "an ODBC session through MariaDB's Connector/ODBC (Debian odbc-mariadb): it creates its own table, writes one row per interval and drops it at the end; set database, user, and the password in $BLACKOUT_MYSQL_PASSWORD",
    }),
  },
  3389: {
    service: 'RDP',
    real: () => ({
      probe: { name: 'rdp', kind: 'rdp', user: 'change_me', passwordEnv: 'BLACKOUT_RDP_PASSWORD' },
      note: 'an RDP session (FreeRDP): set the user and the password in $BLACKOUT_RDP_PASSWORD; pin the certificate with certFingerprint: "sha256:…"',
      env: ['BLACKOUT_RDP_PASSWORD'],
    }),
  },
  5432: {
    service: 'PostgreSQL',
    real: () => ({
      probe: { name: 'postgres', kind: 'postgres', database: 'change_me', user: 'change_me', passwordEnv: 'BLACKOUT_PG_PASSWORD' },
      note: 'a node-postgres session: it creates its own table (bo_<probe>_t<trial>) in the database, writes one row per interval and drops the table at the end; set database, user, and the password in $BLACKOUT_PG_PASSWORD',
      env: ['BLACKOUT_PG_PASSWORD'],
    }),
  },
  5672: { service: 'AMQP', real: (_h, port) => hold('amqp', port, 'AMQP (RabbitMQ)') },
  5900: { service: 'VNC', real: (_h, port) => hold('vnc', port, 'VNC') },
  6379: {
    service: 'Redis',
    real: (_h, port) => ({
      probe: { name: 'redis', kind: 'tcp', mode: 'exchange', port, send: 'PING\r\n', expect: '^\\+PONG' },
      note: 'Redis: PING → +PONG every interval (a server with a password answers -NOAUTH: use mode hold there)',
    }),
  },
  8080: {
    service: 'HTTP (alt)',
    real: (host, port) => ({
      probe: { name: `http-${port}`, kind: 'http', url: url('http', host, port, 80), expect: { status: WEB_STATUS } },
      note: 'a keep-alive HTTP client: set a page your users need',
    }),
  },
  8443: {
    service: 'HTTPS (alt)',
    real: (host, port) => ({
      probe: { name: `https-${port}`, kind: 'http', url: url('https', host, port, 443), expect: { status: WEB_STATUS } },
      note: 'a keep-alive HTTPS client (see the 443 probe for tls: ca / pin)',
    }),
  },
  11211: {
    service: 'memcached',
    real: (_h, port) => ({ probe: { name: 'memcached', kind: 'tcp', mode: 'exchange', port, send: 'version\r\n', expect: '^VERSION' }, note: 'memcached: "version" every interval' }),
  },
  27017: { service: 'MongoDB', real: (_h, port) => hold('mongodb', port, 'MongoDB') },
};

export const DEFAULT_PORTS = Object.keys(WELL_KNOWN).map(Number);

/** A lab service's probe: the lab target supplies its credentials, so the probe names only what differs. */
function labTemplate(lab: LabState, service: string, info: Record<string, unknown>): ProbeTemplate[] {
  const port = info.port as number;
  switch (service) {
    case 'echo':
      return [{ probe: { name: 'echo', kind: 'tcp' }, note: "the lab's echo service: a line every interval, echoed back" }];
    case 'ssh':
      return [{ probe: { name: 'ssh', kind: 'console' }, note: 'an interactive SSH session (the lab user and key)' }];
    case 'postgres':
      return [{ probe: { name: 'postgres', kind: 'postgres' }, note: 'a node-postgres session writing one row per interval' }];
    case 'rdp':
      return [{ probe: { name: 'rdp', kind: 'rdp' }, note: 'an RDP session (FreeRDP under Xvfb)' }];
    case 'smb':
      return [{ probe: { name: 'smb', kind: 'smb' }, note: "a file copy from the lab's share" }];
    case 'web':
      return [
        {
          probe: { name: `http-${port}`, kind: 'http', url: `http://${lab.targetAddress}:${port}/`, expect: { status: WEB_STATUS } },
          note: "the lab's web application's front page (it redirects to its login: any usual answer)",
        },
      ];
    case 'nginx':
      return [{ probe: { name: 'http', kind: 'http', url: `http://${lab.targetAddress}/`, expect: { status: 200, body: 'Welcome to nginx' } }, note: "nginx's stock page" }];
    case 'nginx-https':
      return [
        {
          probe: { name: 'https', kind: 'http', url: `https://${lab.targetAddress}/`, tls: { pin: info.certFingerprint }, expect: { status: 200 } },
          note: "nginx over HTTPS, the lab's self-signed certificate pinned",
        },
      ];
    case 'redis':
      return [{ probe: { name: 'redis', kind: 'tcp', mode: 'exchange', port, send: 'PING\r\n', expect: '^\\+PONG' }, note: 'Redis: PING → +PONG every interval' }];
    case 'mariadb':
      return [
        { probe: { name: 'mariadb', kind: 'odbc', driver: 'MariaDB Unicode' }, note: "an ODBC session through MariaDB's Connector/ODBC writing one row per interval (the lab's database and user)" },
      ];
    default:
      return port > 0 ? [{ ...hold(service, port, `lab service ${service}`) }] : [];
  }
}

export interface InitOptions {
  /** extra ports to try (beside the well-known ones) */
  ports?: number[];
  /** only these ports */
  onlyPorts?: boolean;
  timeoutMs?: number;
  /** the lab instance when the host is `lab` */
  lab?: string;
  /** the suite's name */
  name?: string;
}

export interface InitResult {
  host: string;
  address: string;
  checks: PortCheck[];
  /** port → the service and the probe(s) chosen */
  found: Array<{ port: number; service: string; probes: string[] }>;
  /** open ports nothing is known about: a tcp hold probe each */
  unknown: number[];
  yaml: string;
  env: string[];
}

export class InitError extends Error {}

/** Scans the target and builds the starter suite's text. */
export async function initSuite(host: string, o: InitOptions = {}): Promise<InitResult> {
  const isLab = host === 'lab' || o.lab !== undefined;
  const timeoutMs = o.timeoutMs ?? 1500;
  let lab: LabState | null = null;
  let address = host;
  const labPorts = new Map<number, { service: string; info: Record<string, unknown> }>();
  if (isLab) {
    const name = o.lab ?? process.env.BLACKOUT_LAB ?? DEFAULT_LAB;
    lab = readLabState(name);
    if (!lab) throw new InitError(`lab "${name}" is not up: run \`blackout lab up${name === DEFAULT_LAB ? '' : ` --name ${name}`}\` first`);
    address = lab.targetAddress;
    for (const [service, info] of Object.entries(lab.services)) {
      const i = info as unknown as Record<string, unknown>;
      if (typeof i.port === 'number' && i.port > 0) labPorts.set(i.port, { service, info: i });
      // a second listener of the same server (nginx's HTTPS) is a service of its own here
      if (typeof i.httpsPort === 'number') labPorts.set(i.httpsPort, { service: `${service}-https`, info: i });
    }
  } else if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$|^\[?[0-9A-Fa-f:.]+\]?$/.test(host)) {
    throw new InitError(`host "${host}": expected a host name or an IP address (or "lab")`);
  }
  const ports = o.onlyPorts ? [...(o.ports ?? [])] : [...DEFAULT_PORTS, ...labPorts.keys(), ...(o.ports ?? [])];
  if (!ports.length) throw new InitError('--ports: no port to try');
  const checks = await checkPorts(address.replace(/^\[|\]$/g, ''), ports, timeoutMs);

  const templates: ProbeTemplate[] = [{ probe: { name: 'ping', kind: 'icmp', interval: '10ms' }, note: 'ICMP echo: measures the outage itself (no session)' }];
  const found: InitResult['found'] = [];
  const unknown: number[] = [];
  for (const c of checks.filter((x) => x.open)) {
    let t: ProbeTemplate[] = [];
    let service = '';
    const ls = labPorts.get(c.port);
    if (lab && ls) {
      service = `${ls.service} (lab)`;
      t = labTemplate(lab, ls.service, ls.info);
    } else if (WELL_KNOWN[c.port]) {
      service = WELL_KNOWN[c.port]!.service;
      t = [WELL_KNOWN[c.port]!.real(address, c.port)];
    } else {
      service = 'unknown';
      unknown.push(c.port);
      t = [hold(`port-${c.port}`, c.port, `port ${c.port} (no known service)`)];
    }
    // two services whose starter probes share a name (e.g. http on 80 and on a --ports 8080) get the port appended
    for (const x of t) if (templates.some((y) => y.probe.name === x.probe.name)) x.probe.name = `${String(x.probe.name)}-${c.port}`;
    templates.push(...t);
    found.push({ port: c.port, service, probes: t.map((x) => String(x.probe.name)) });
  }
  const env = [...new Set(templates.flatMap((t) => t.env ?? []))];
  const yaml = suiteText({ host, address, lab, templates, found, env, name: o.name });
  return { host, address, checks, found, unknown, yaml, env };
}

function suiteText(a: { host: string; address: string; lab: LabState | null; templates: ProbeTemplate[]; found: InitResult['found']; env: string[]; name?: string }): string {
  const suite = {
    name: a.name ?? `${a.lab ? `lab ${a.lab.name}` : a.host} starter`,
    description: `written by blackout init on ${new Date().toISOString().slice(0, 10)}: ${a.found.map((f) => `${f.service} ${f.port}`).join(', ') || 'no service answered'}`,
    target: a.lab ? { lab: a.lab.name } : { host: a.address },
    probes: a.templates.map((t) => t.probe),
    injector: a.lab ? { kind: 'cable-pull' } : { kind: 'manual', what: `the network cable of ${a.host}` },
    blackouts: ['2s', '5s', '10s'],
  };
  const doc = new Document(suite);
  const probes = doc.get('probes');
  if (isSeq(probes)) {
    probes.items.forEach((item, i) => {
      if (!isMap(item)) return;
      (item as YAMLMap).flow = false;
      (item as YAMLMap).commentBefore = ` ${a.templates[i]!.note}`;
    });
  }
  const injector = doc.get('injector');
  if (isMap(injector)) {
    injector.commentBefore = a.lab
      ? ' the lab switch drops every packet of the target for each blackout; the kernel restores it at the deadline'
      : [
          ' manual: blackout counts, you pull and plug back the cable (or switch the port off and on).',
          ' Other injectors: command (your own cut/restore commands, with a restore deadline),',
          ' linux-gateway (nft drop on a Linux router in the path, over SSH), and the hypervisors:',
          ' libvirt, proxmox, vsphere, hyperv (link down, pause, quick/live migration). See the README,',
          ' "Testing your own application".',
        ].join('\n');
  }
  const head = [
    `# blackout starter suite for ${a.host}${a.lab ? ` (${a.address})` : ''}, written by \`blackout init\`.`,
    '# Only TCP connection attempts were made to find these services; nothing was injected.',
    ...(a.env.length ? [`# Secrets are read from the environment at run time: ${a.env.map((e) => `$${e}`).join(', ')}.`] : []),
    '# Check it with `blackout validate FILE`, try it with `blackout run FILE --dry-run`, then run it.',
    '',
  ];
  return head.join('\n') + doc.toString({ lineWidth: 0 });
}
