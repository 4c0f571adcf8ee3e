import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';
import { freePort, isListening } from './ports.js';
import { startProgram, type Proc } from './process.js';
import { tempDir } from './temp.js';
import { issueTestServerCertificate, makeTestCa, type TestCa } from './tls.js';
import { waitFor } from './wait.js';

const NGINX_BIN = '/usr/sbin/nginx';

/** Why the nginx tests cannot run here, with the install command; undefined when they can. */
export function nginxMissingReason(): string | undefined {
  return existsSync(NGINX_BIN) ? undefined : `${NGINX_BIN} is missing: apt-get install -y nginx-light`;
}

export interface Nginx {
  /** HTTPS through the load balancer: the server block of deploy/nginx/pallas.conf, as operators use it. */
  httpsUrl: string;
  /** The CA of its certificate (for 127.0.0.1 and localhost): what HTTPS clients trust. */
  caFile: string;
  /** Plain HTTP on the same proxy rules, for test clients that do not want TLS. */
  httpUrl: string;
  proc: Proc;
  /** Points the upstream at these `host:port`s and reloads nginx without dropping connections. */
  setUpstreams(upstreams: string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Debian's nginx on free ports with `deploy/nginx/pallas.conf`, its three marked places
 * filled in: the managers' addresses, a certificate, and the listen port. The certificate is
 * made here with openssl, for 127.0.0.1, signed by `issuer` (the managers' CA, which agents
 * pin) or else by a CA made for this nginx. A plain HTTP server with the same location is
 * added for tests.
 */
export async function startNginx(opts: { upstreams: string[]; issuer?: TestCa }): Promise<Nginx> {
  const dir = tempDir('pallas-nginx-');
  for (const sub of ['logs', 'temp', 'tls']) mkdirSync(join(dir.path, sub), { recursive: true });
  const tlsDir = join(dir.path, 'tls');
  const certificate = issueTestServerCertificate(tlsDir, 'nginx', opts.issuer ?? makeTestCa(tlsDir, 'nginx'));
  const httpsPort = await freePort();
  const httpPort = await freePort();
  const template = readFileSync(join(REPO_ROOT, 'deploy', 'nginx', 'pallas.conf'), 'utf8');
  const write = (upstreams: string[]) => {
    let site = template
      .replace(/upstream pallas_managers \{[\s\S]*?keepalive/, `upstream pallas_managers {\n${upstreams.map((u) => `    server ${u} max_fails=1 fail_timeout=2s;\n`).join('')}    keepalive`)
      .replace('listen 443 ssl;', `listen 127.0.0.1:${httpsPort} ssl;`)
      .replace('/etc/pallas/tls/server.crt', certificate.certFile)
      .replace('/etc/pallas/tls/server.key', certificate.keyFile);
    // The same location once more on plain HTTP.
    const location = site.slice(site.indexOf('    location / {'), site.lastIndexOf('}'));
    site += `\nserver {\n    listen 127.0.0.1:${httpPort};\n    client_max_body_size 0;\n    proxy_request_buffering off;\n${location}}\n`;
    const temp = join(dir.path, 'temp');
    writeFileSync(join(dir.path, 'nginx.conf'), [
      'worker_processes 1;',
      'daemon off;',
      `pid ${join(dir.path, 'nginx.pid')};`,
      `error_log ${join(dir.path, 'logs', 'error.log')} warn;`,
      // As root nginx would switch its workers to nobody, who cannot read the temp folders.
      ...(process.getuid?.() === 0 ? ['user root;'] : []),
      'events { worker_connections 4096; }',
      'http {',
      `  access_log off;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${join(temp, t)};`),
      site,
      '}',
    ].join('\n'));
  };
  write(opts.upstreams);
  const proc = startProgram(NGINX_BIN, ['-p', dir.path, '-c', join(dir.path, 'nginx.conf')]);
  await waitFor('nginx to listen', async () => {
    if (proc.child.exitCode !== null) throw new Error(`nginx exited:\n${proc.output()}\n${safeRead(join(dir.path, 'logs', 'error.log'))}`);
    return (await isListening(httpPort)) && (await isListening(httpsPort));
  }, { timeoutMs: 15_000 });
  return {
    httpsUrl: `https://127.0.0.1:${httpsPort}`,
    caFile: certificate.caFile,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    proc,
    async setUpstreams(upstreams) {
      write(upstreams);
      proc.child.kill('SIGHUP');
      // The old workers finish their requests and go; give the new ones a moment to take over.
      await new Promise((r) => setTimeout(r, 300));
    },
    async stop() {
      await proc.stop(3_000);
      dir.cleanup();
    },
  };
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
