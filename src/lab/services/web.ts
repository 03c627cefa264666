/**
 * The lab's web application (servers/web-server.mjs: node:http + ws): a login
 * form, a live page fed by a websocket every 250 ms with the page's own
 * reconnect logic, and an admin Unix socket that forces a logout.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';
import { LAB_USER } from './ssh.ts';

const script = fileURLToPath(new URL('../../../servers/web-server.mjs', import.meta.url));
export const WEB_PORT = 8080;

export const web: LabService = {
  name: 'web',
  packages: [],
  async start(lab) {
    const dir = `${lab.dir}/web`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const passwordFile = `${lab.dir}/secrets/web-password`;
    writeFileSync(passwordFile, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
    const adminSocket = `${dir}/admin.sock`;
    startInTarget(lab, 'web', process.execPath, [script, lab.targetAddress, String(WEB_PORT), passwordFile, adminSocket]);
    await waitForPort(lab.targetAddress, WEB_PORT, 15_000);
    return { port: WEB_PORT, url: `http://${lab.targetAddress}:${WEB_PORT}/`, user: LAB_USER, passwordFile, adminSocket };
  },
};
