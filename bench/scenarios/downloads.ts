/**
 * Scenario "downloads": throughput of an artifact download from the manager (a signed device
 * URL, streamed from disk) beside Debian's nginx serving the same file from the same disk in
 * the same run (its own minimal config in a temp dir, an ephemeral port, no root paths). The
 * client is curl for both, so the client's cost is the same. Two patterns: one whole download,
 * and a client that stops every `cutMiB` and resumes with `Range` on a new connection (what a
 * device on a flaky link does). Each figure is the median of `rounds` runs, alternating
 * servers so both see the same page cache and machine load.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { uploadFile } from '@pallas/client/node';
import { patchFile, startManagerProcess, tempDir, waitFor } from '@pallas/testkit';
import { childPids, cpuSecondsOf, profileNodeArgs, rssBytes } from '../lib/proc.js';
import { percentile, type Row } from '../lib/stats.js';

export interface DownloadsOptions {
  sizeMiB: number;
  cutMiB: number;
  rounds: number;
}

const MiB = 1024 * 1024;
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const CURL = ['/usr/bin/curl', '/bin/curl'].find((p) => existsSync(p));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** CPU time (user + system, seconds) of a process and its direct children (nginx's worker). */
const cpuSeconds = (pid: number): number => cpuSecondsOf([pid, ...childPids(pid)]);

/** One curl download to /dev/null; seconds taken (from curl's own timer). `ca`: trust this CA for HTTPS. */
function curlOnce(url: string, range?: string, ca?: string): number {
  const r = spawnSync(CURL!, ['-sS', '-f', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', ...(ca ? ['--cacert', ca] : []), ...(range ? ['-r', range] : []), url], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`curl ${url}: ${r.stderr}`);
  return Number(r.stdout.split(' ')[0]);
}

/** Whole file, or in `cut`-sized pieces each on a new connection; MB/s (MiB/s). */
function download(url: string, size: number, cut?: number, ca?: string): number {
  let seconds = 0;
  if (!cut) seconds = curlOnce(url, undefined, ca);
  else for (let start = 0; start < size; start += cut) seconds += curlOnce(url, `${start}-${Math.min(size, start + cut) - 1}`, ca);
  return size / MiB / seconds;
}

/**
 * nginx on two ports: plain HTTP and HTTPS with the manager's own certificate (the same key
 * and chain, so both servers do the same TLS work).
 */
async function startNginx(dir: string, root: string, tls: { cert: string; key: string }): Promise<{ url: string; httpsUrl: string; child: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const tlsPort = await freePort();
  const conf = join(dir, 'nginx.conf');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) mkdirSync(join(dir, d), { recursive: true });
  // Debian's stock settings for static files (sendfile, tcp_nopush), one worker like the manager's one thread.
  writeFileSync(conf, `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server { listen 127.0.0.1:${port}; root ${root}; }
  server { listen 127.0.0.1:${tlsPort} ssl; ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key}; root ${root}; }
}
`);
  const child = spawn(NGINX!, ['-p', dir, '-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  await waitFor('nginx to listen', async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    return fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
  }, { timeoutMs: 10_000 });
  return {
    url: `http://127.0.0.1:${port}`,
    httpsUrl: `https://127.0.0.1:${tlsPort}`,
    child,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/** The file: random bytes (incompressible), written in 1 MiB blocks. */
function makeFile(path: string, size: number): void {
  const block = randomBytes(MiB);
  const fd = openSync(path, 'w');
  for (let done = 0; done < size; done += MiB) writeSync(fd, block, 0, Math.min(MiB, size - done));
  closeSync(fd);
}

export async function runDownloads(o: DownloadsOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  if (!CURL) throw new Error('the downloads scenario needs curl (apt-get install curl)');
  const dir = tempDir('pallas-bench-downloads-');
  const www = join(dir.path, 'www');
  mkdirSync(www);
  const size = o.sizeMiB * MiB;
  const file = join(www, 'artifact.bin');
  makeFile(file, size);
  // The manager checks an upload's format for its kind: make the file a valid patch (a tar
  // ends at its end-of-archive marker; the random bytes after it are still served).
  const head = patchFile('1');
  const fd = openSync(file, 'r+');
  writeSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  // nginx started as root serves as `nobody`: let it reach the file in our 0700 temp dir.
  chmodSync(dir.path, 0o755);
  chmodSync(www, 0o755);
  chmodSync(file, 0o644);
  const dataDir = join(dir.path, 'manager');
  const manager = await startManagerProcess({ dataDir, args: ['--log-level', 'warn'], nodeArgs: profileNodeArgs() });
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  const rows: Row[] = [];
  const raw: Record<string, unknown> = { ...o };
  try {
    const admin = await manager.client();
    const { id } = await uploadFile(admin, file, { kind: 'patch', name: 'bench', version: '1' });
    const managerUrl = (await admin.call('createDownloadUrl', { params: { id }, body: { deviceId: 'bench-device' } })).url;
    const cut = o.cutMiB * MiB;
    if (!NGINX) {
      raw.nginx = 'skipped: nginx is not installed (apt-get install nginx)';
      console.log(`downloads: ${raw.nginx}; measuring the manager alone`);
    } else {
      const tlsDir = join(dataDir, 'tls');
      nginx = await startNginx(join(dir.path, 'nginx'), www, { cert: join(tlsDir, 'server.crt'), key: join(tlsDir, 'server.key') });
    }
    const nginxUrl = nginx ? `${nginx.url}/artifact.bin` : undefined;
    const managerTlsUrl = managerUrl.replace(manager.httpUrl, manager.httpsUrl);
    const nginxTlsUrl = nginx ? `${nginx.httpsUrl}/artifact.bin` : undefined;

    // Warm-up: the file into the page cache, both servers' code paths hot.
    download(managerUrl, size);
    if (nginxUrl) download(nginxUrl, size);
    download(managerTlsUrl, size, undefined, manager.caFile);
    if (nginxTlsUrl) download(nginxTlsUrl, size, undefined, manager.caFile);

    const results = {
      manager: [] as number[], nginx: [] as number[], managerCut: [] as number[], nginxCut: [] as number[], managerCpuPerGiB: [] as number[], nginxCpuPerGiB: [] as number[],
      managerTls: [] as number[], nginxTls: [] as number[], managerTlsCut: [] as number[], nginxTlsCut: [] as number[],
    };
    /** A download's throughput, and the server's CPU seconds per GiB served (steadier than MiB/s on a busy machine). */
    const measured = (pid: number, url: string, cutBytes: number | undefined, into: number[]): number => {
      const before = cpuSeconds(pid);
      const rate = download(url, size, cutBytes);
      if (!cutBytes) into.push((cpuSeconds(pid) - before) / (size / 1024 ** 3));
      return rate;
    };
    let peakRss = rssBytes(manager.pid);
    const sampler = setInterval(() => { peakRss = Math.max(peakRss, rssBytes(manager.pid)); }, 100);
    // curl runs synchronously, so sample from a second look after each run too.
    for (let i = 0; i < o.rounds; i++) {
      results.manager.push(measured(manager.pid, managerUrl, undefined, results.managerCpuPerGiB));
      peakRss = Math.max(peakRss, rssBytes(manager.pid));
      if (nginxUrl) results.nginx.push(measured(nginx!.child.pid!, nginxUrl, undefined, results.nginxCpuPerGiB));
      results.managerCut.push(download(managerUrl, size, cut));
      if (nginxUrl) results.nginxCut.push(download(nginxUrl, size, cut));
      results.managerTls.push(download(managerTlsUrl, size, undefined, manager.caFile));
      if (nginxTlsUrl) results.nginxTls.push(download(nginxTlsUrl, size, undefined, manager.caFile));
      results.managerTlsCut.push(download(managerTlsUrl, size, cut, manager.caFile));
      if (nginxTlsUrl) results.nginxTlsCut.push(download(nginxTlsUrl, size, cut, manager.caFile));
    }
    clearInterval(sampler);
    raw.results = results;
    const med = (xs: number[]) => percentile(xs, 50);
    // HTTPS first: it is how devices download (docs/artifacts.md); plain HTTP after it, where
    // nginx hands the file to the kernel with sendfile and a Node server cannot.
    rows.push({
      metric: `HTTPS: download ${o.sizeMiB} MiB, one request`,
      value: med(results.managerTls), unit: 'MiB/s',
      ...(nginxTlsUrl ? { baseline: { name: 'nginx', value: med(results.nginxTls) } } : {}),
      target: 'ratio ≥ 0.8',
    });
    rows.push({
      metric: `HTTPS: cut every ${o.cutMiB} MiB, resumed with Range`,
      value: med(results.managerTlsCut), unit: 'MiB/s',
      ...(nginxTlsUrl ? { baseline: { name: 'nginx', value: med(results.nginxTlsCut) } } : {}),
      target: 'ratio ≥ 0.8',
    });
    rows.push({
      metric: `HTTP: download ${o.sizeMiB} MiB, one request`,
      value: med(results.manager), unit: 'MiB/s',
      ...(nginxUrl ? { baseline: { name: 'nginx', value: med(results.nginx) } } : {}),
      target: 'ratio ≥ 0.8',
    });
    rows.push({
      metric: `HTTP: cut every ${o.cutMiB} MiB, resumed with Range`,
      value: med(results.managerCut), unit: 'MiB/s',
      ...(nginxUrl ? { baseline: { name: 'nginx', value: med(results.nginxCut) } } : {}),
      target: 'ratio ≥ 0.8',
    });
    rows.push({
      metric: 'HTTP: server CPU per GiB served (one request)',
      value: med(results.managerCpuPerGiB), unit: 's',
      ...(nginxUrl ? { baseline: { name: 'nginx', value: med(results.nginxCpuPerGiB) } } : {}),
    });
    rows.push({ metric: 'manager peak RSS while serving (sampled between runs)', value: peakRss / MiB, unit: 'MiB', target: '< 200 MiB' });
  } finally {
    await nginx?.stop();
    await manager.close();
    dir.cleanup();
  }
  return { rows, raw };
}
