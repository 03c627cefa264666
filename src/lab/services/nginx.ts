/**
 * nginx from Debian's nginx-light package, serving its stock page
 * (/var/www/html/index.nginx-debian.html) with the stock http settings
 * (mime types, sendfile, keepalive as compiled in: 75 s idle, 1000 requests
 * per connection). What differs from /etc/nginx/nginx.conf is only what lets
 * several labs run side by side: its own PID and log files in the lab folder,
 * listening on the target address only, plus an HTTPS listener with a
 * self-signed certificate made at `lab up` (its SHA-256 fingerprint and the
 * certificate itself recorded for the http probe's TLS tests: pin or CA file).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { selfSignedCert, startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';

export const HTTP_PORT = 80;
export const HTTPS_PORT = 443;

function nginxConf(dir: string, address: string): string {
  return `# blackout lab: Debian's stock nginx.conf and default site, with the lab's own pid/log files and addresses
user www-data;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
daemon off;
events {
	worker_connections 768;
}
http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_prefer_server_ciphers on;
	access_log ${dir}/access.log;
	gzip on;
	client_body_temp_path ${dir}/tmp/body;
	proxy_temp_path ${dir}/tmp/proxy;
	fastcgi_temp_path ${dir}/tmp/fastcgi;
	uwsgi_temp_path ${dir}/tmp/uwsgi;
	scgi_temp_path ${dir}/tmp/scgi;
	server {
		listen ${address}:${HTTP_PORT} default_server;
		listen ${address}:${HTTPS_PORT} ssl default_server;
		ssl_certificate ${dir}/cert.pem;
		ssl_certificate_key ${dir}/key.pem;
		root /var/www/html;
		index index.html index.htm index.nginx-debian.html;
		server_name _;
		location / {
			try_files $uri $uri/ =404;
		}
	}
}
`;
}

export const nginx: LabService = {
  name: 'nginx',
  packages: ['nginx-light', 'openssl'],
  async start(lab) {
    if (!existsSync('/usr/sbin/nginx')) throw new Error('nginx: /usr/sbin/nginx is missing: run `npm run setup` (installs nginx-light)');
    const dir = `${lab.dir}/nginx`;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(`${dir}/tmp`, { recursive: true, mode: 0o755 });
    const certFingerprint = await selfSignedCert(dir, `blackout-lab-${lab.name}`, lab.targetAddress);
    writeFileSync(`${dir}/nginx.conf`, nginxConf(dir, lab.targetAddress));
    startInTarget(lab, 'nginx', '/usr/sbin/nginx', ['-c', `${dir}/nginx.conf`, '-e', `${dir}/error.log`]);
    await waitForPort(lab.targetAddress, HTTP_PORT, 30_000);
    await waitForPort(lab.targetAddress, HTTPS_PORT, 30_000);
    return {
      port: HTTP_PORT,
      httpsPort: HTTPS_PORT,
      url: `http://${lab.targetAddress}/`,
      httpsUrl: `https://${lab.targetAddress}/`,
      certFile: `${dir}/cert.pem`,
      certFingerprint,
      page: 'Welcome to nginx!',
    };
  },
};
