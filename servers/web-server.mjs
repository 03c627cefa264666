// The lab's small web application: a login form, then a live page whose
// websocket pushes fresh server data every 250 ms, with the page's own
// reconnect logic. It stands for "the web users got kicked off" in the seeds.
// Plain JavaScript (node:http + ws), run inside the target namespace and its
// freezer cgroup like every lab server.
//
//   node web-server.mjs HOST PORT PASSWORD_FILE ADMIN_SOCKET
//
// Users: the lab user `bolab`, its password in PASSWORD_FILE.
// Sessions: an HttpOnly cookie `sid`, kept in memory.
// Server heartbeat: a websocket ping every 5 s; a socket that has not answered
// the previous ping is terminated (the `ws` library's documented pattern).
// Admin (a Unix socket in the lab folder, not reachable over the network, so a
// test can use it even during a blackout):
//   POST /logout  {"client": "NAME"} or {"all": true}  → force-logout those sessions
//   GET  /sessions                                      → the live sessions
// The page (/app) takes its policy from the query string, so a probe can state it:
//   staleAfter (ms, default 3000): no data for this long → the page drops the socket and reconnects
//   giveUp     (ms, default 30000): reconnecting for this long → the page shows an error and stops
import { createServer } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { WebSocketServer } from 'ws';

const [host = '0.0.0.0', port = '8080', passwordFile, adminSocket] = process.argv.slice(2);
const USER = 'bolab';
const password = readFileSync(passwordFile, 'utf8').trim();
/** sid → { user, client, createdAt } */
const sessions = new Map();
let seq = 0;
// fresh data four times a second: a page that calls its data stale after 1 s then has
// 750 ms of room for a late tick on a loaded machine, where a 1 s period left it none
const DATA_EVERY_MS = 250;

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function cookies(req) {
  const out = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}
const sessionOf = (req) => {
  const sid = cookies(req).sid;
  return sid && sessions.has(sid) ? { sid, ...sessions.get(sid) } : null;
};
function sameText(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
function readBody(req, limit = 16384) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
      if (body.length > limit) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

const REASONS = { logout: 'You were logged out by the server.', session: 'Please log in.', invalid: 'Invalid user name or password.' };

function loginPage(query, status = 200, reason = query.get('reason')) {
  const keep = ['client', 'staleAfter', 'giveUp'].map((k) => (query.get(k) ? `<input type="hidden" name="${k}" value="${esc(query.get(k))}">` : '')).join('');
  return [
    status,
    `<!doctype html><html><head><meta charset="utf-8"><title>blackout lab — log in</title>
<style>body{font:16px system-ui;margin:3em}form{display:grid;gap:.6em;width:18em}#reason{color:#b00}</style></head>
<body><h1>blackout lab app</h1>
<p id="reason" data-reason="${esc(reason ?? '')}">${esc(REASONS[reason] ?? '')}</p>
<form method="post" action="/login">${keep}
<label>User <input name="user" id="user" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button id="login" type="submit">Log in</button></form></body></html>`,
  ];
}

function appPage(session) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>blackout lab — live</title>
<style>body{font:16px system-ui;margin:3em}#status{padding:.4em .8em;display:inline-block;border-radius:4px}
[data-state=live]{background:#cfc}[data-state=connecting],[data-state=reconnecting]{background:#ffc}[data-state=failed],[data-state=logged-out]{background:#fcc}</style></head>
<body><h1>Live data</h1><p>Logged in as <b id="who">${esc(session.user)}</b></p>
<p>Status: <span id="status" data-state="connecting">connecting…</span></p>
<p>Latest: <span id="data">–</span></p>
<script>
(() => {
  const q = new URLSearchParams(location.search);
  const staleAfter = Number(q.get('staleAfter')) || 3000;
  const giveUp = Number(q.get('giveUp')) || 30000;
  const statusEl = document.getElementById('status');
  const dataEl = document.getElementById('data');
  const bo = (window.__bo = { state: 'connecting', seq: null, receivedAt: null, reconnects: 0, opens: 0, message: '', lastDrop: '', staleAfter, giveUp });
  // heardAt: the last data on the current socket, or its opening: a socket that has just
  // (re)opened has not yet had the chance to be stale, whatever the last data before it was
  let ws = null, downSince = null, attempt = 0, connectTimer = null, retryTimer = null, heardAt = null;
  function setState(state, message) {
    bo.state = state; bo.message = message;
    statusEl.dataset.state = state; statusEl.textContent = message;
  }
  function abandon(s) {
    if (!s) return;
    s.onopen = s.onmessage = s.onclose = s.onerror = null;
    try { s.close(); } catch {}
  }
  function loggedOut(text) {
    abandon(ws); ws = null; clearTimeout(retryTimer); clearTimeout(connectTimer);
    setState('logged-out', text || 'You were logged out.');
    setTimeout(() => location.assign('/login?reason=logout'), 1500);
  }
  function retry(why) {
    if (bo.state === 'failed' || bo.state === 'logged-out') return;
    // what started this outage, kept after the reconnect: a check that looks only now and then still learns of it
    if (downSince === null) { downSince = Date.now(); bo.lastDrop = 'Reconnecting… (' + why + ')'; }
    if (Date.now() - downSince >= giveUp) {
      setState('failed', 'Connection to the server lost (' + why + '). Please reload the page.');
      return;
    }
    setState('reconnecting', 'Reconnecting… (' + why + ')');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, Math.min(500 * 2 ** attempt++, 5000));
  }
  function connect() {
    const s = (ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws'));
    clearTimeout(connectTimer);
    connectTimer = setTimeout(() => { if (ws === s && s.readyState !== 1) { abandon(s); ws = null; retry('connect timed out'); } }, 5000);
    s.onopen = () => {
      clearTimeout(connectTimer);
      if (bo.opens++ > 0) bo.reconnects++;
      attempt = 0; downSince = null; heardAt = Date.now();
      setState('live', 'live');
    };
    s.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'data') {
        bo.seq = m.seq; bo.receivedAt = heardAt = Date.now();
        dataEl.textContent = '#' + m.seq + ' at ' + new Date(m.serverTime).toISOString();
        if (bo.state !== 'live') setState('live', 'live');
      } else if (m.type === 'logout') loggedOut(m.message);
    };
    s.onclose = (ev) => {
      if (ws !== s) return;
      ws = null;
      if (ev.code === 4001) loggedOut(ev.reason);
      else retry('websocket closed, code ' + ev.code);
    };
  }
  setInterval(() => {
    if (bo.state === 'reconnecting' && downSince !== null && Date.now() - downSince >= giveUp) {
      abandon(ws); ws = null; clearTimeout(retryTimer); clearTimeout(connectTimer);
      setState('failed', 'Connection to the server lost for ' + giveUp + ' ms. Please reload the page.');
      return;
    }
    if (bo.state === 'live' && heardAt !== null && Date.now() - heardAt > staleAfter) {
      abandon(ws); ws = null;
      retry('no data for ' + staleAfter + ' ms');
    }
  }, 250);
  connect();
})();
</script></body></html>`;
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://lab');
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(302, { location: '/login' }).end();
    } else if (req.method === 'GET' && url.pathname === '/login') {
      const [status, html] = loginPage(url.searchParams);
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    } else if (req.method === 'POST' && url.pathname === '/login') {
      const form = new URLSearchParams(await readBody(req));
      if (form.get('user') !== USER || !sameText(form.get('password') ?? '', password)) {
        const [, html] = loginPage(form, 401, 'invalid');
        res.writeHead(401, { 'content-type': 'text/html; charset=utf-8' }).end(html);
        return;
      }
      const sid = randomBytes(18).toString('base64url');
      sessions.set(sid, { user: USER, client: form.get('client') ?? '', createdAt: Date.now() });
      const next = new URLSearchParams();
      for (const k of ['staleAfter', 'giveUp']) if (form.get(k)) next.set(k, form.get(k));
      res.writeHead(303, { location: `/app${next.size ? `?${next}` : ''}`, 'set-cookie': `sid=${sid}; HttpOnly; SameSite=Strict; Path=/` }).end();
    } else if (req.method === 'GET' && url.pathname === '/app') {
      const s = sessionOf(req);
      if (!s) return void res.writeHead(302, { location: '/login?reason=session' }).end();
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(appPage(s));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`error: ${e.message}\n`);
  }
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  if (new URL(req.url ?? '/', 'http://lab').pathname !== '/ws') return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    const s = sessionOf(req);
    if (!s) return ws.close(4001, 'not logged in');
    ws.sid = s.sid;
    ws.alive = true;
    ws.on('pong', () => (ws.alive = true));
    ws.on('error', () => ws.terminate());
  });
});

setInterval(() => {
  seq++;
  const msg = JSON.stringify({ type: 'data', seq, serverTime: Date.now(), value: Math.round(Math.random() * 1000) });
  for (const ws of wss.clients) if (ws.readyState === 1) ws.send(msg);
}, DATA_EVERY_MS);

setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.alive) {
      ws.terminate();
      continue;
    }
    ws.alive = false;
    ws.ping();
  }
}, 5000);

server.listen({ host, port: Number(port) }, () => process.stdout.write(`web app listening on ${host}:${port}\n`));

// ---- admin, over a Unix socket only ----
const admin = createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/logout') {
      const body = JSON.parse((await readBody(req)) || '{}');
      let kicked = 0;
      for (const [sid, s] of sessions) {
        if (!body.all && s.client !== body.client) continue;
        sessions.delete(sid);
        kicked++;
        for (const ws of wss.clients) {
          if (ws.sid !== sid) continue;
          ws.send(JSON.stringify({ type: 'logout', message: 'You were logged out by the server.' }));
          ws.close(4001, 'logged out by the server');
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kicked }) + '\n');
    } else if (req.method === 'GET' && req.url === '/sessions') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([...sessions.values()]) + '\n');
    } else res.writeHead(404).end();
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`${e.message}\n`);
  }
});
if (adminSocket) {
  rmSync(adminSocket, { force: true });
  admin.listen(adminSocket);
}
