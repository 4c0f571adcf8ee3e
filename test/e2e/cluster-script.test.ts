/**
 * `npm run cluster` (scripts/cluster.ts, docs/scale-out.md "Try it on one machine"), short: two
 * managers and three simulated devices, started as an operator starts it, read through its
 * cluster.json, and stopped with Ctrl-C (SIGINT to its whole process group, as a terminal
 * sends it). Nothing it started may be left running, and its database is dropped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ADMIN_PASSWORD, REPO_ROOT, TEST_PG_URL, databaseExists, mosquittoMissingReason, nginxMissingReason, pgSkipReason, skipUnless, tempDir, waitFor, Api,
} from '@pallas/testkit';

interface ClusterJson {
  loadBalancer: { pid: number; url: string; httpsUrl: string; caFile: string };
  managers: Array<{ pid: number; url: string }>;
  broker: { pid: number; url: string };
  database: { url: string; name: string; serverPid: number | null; drop: string };
  devices: { pid: number; count: number };
  controller: { pid: number };
  stoppedAt?: string;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Every process below `root` now, from /proc (parent links). */
function descendantsOf(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the ppid follows the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const [child, ppid] of parent) if (ppid === pid) { found.push(child); walk(child); }
  };
  walk(root);
  return found;
}

function httpsStatus(url: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    httpsRequest(url, { ca, agent: false }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject).end();
  });
}

describe('npm run cluster', { skip: skipUnless(pgSkipReason, mosquittoMissingReason(), nginxMissingReason()) }, () => {
  it('starts managers, nginx, Mosquitto, a database and devices; cluster.json names them; Ctrl-C stops every one', { timeout: 180_000 }, async () => {
    const dir = tempDir('pallas-cluster-script-');
    const dataDir = join(dir.path, 'cluster');
    // What `npm run cluster -- …` runs after building (the suite runs from the built tree).
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', '--managers', '2', '--devices', '3', '--data-dir', dataDir, '--pg-url', TEST_PG_URL!], {
      cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    let processes: number[] = [];
    try {
      const started = Date.now();
      await waitFor('the cluster to be running', () => {
        if (child.exitCode !== null) throw new Error(`npm run cluster exited:\n${out}`);
        return out.includes('Pallas cluster is running');
      }, { timeoutMs: 90_000 });
      console.log(`# npm run cluster with 2 managers and 3 devices: running after ${Date.now() - started} ms`);

      const file = join(dataDir, 'cluster.json');
      const info = JSON.parse(readFileSync(file, 'utf8')) as ClusterJson;
      assert.equal(info.controller.pid, child.pid, 'the command itself, which Ctrl-C or kill -INT stops');
      assert.equal(info.managers.length, 2);
      assert.equal(info.devices.count, 3);
      const pids = [info.controller.pid, info.loadBalancer.pid, info.broker.pid, info.devices.pid, ...info.managers.map((m) => m.pid)];
      for (const pid of pids) assert.ok(Number.isInteger(pid) && pid > 0 && alive(pid), `pid ${pid} in cluster.json runs`);
      assert.equal(new Set(pids).size, pids.length, 'one pid per process');
      // The database is no process of the cluster's: its server's pid is given for reference.
      assert.match(info.database.name, /^pallas_test_[0-9a-f]+$/);
      assert.ok(info.database.serverPid === null || alive(info.database.serverPid), 'the database server pid, where it can be read');
      assert.match(info.database.drop, new RegExp(`DROP DATABASE IF EXISTS ${info.database.name}`));
      assert.ok(out.includes(info.loadBalancer.url), 'the console URL is printed');
      assert.ok(out.includes(ADMIN_PASSWORD), 'the admin password is printed');

      // Through nginx, plain and HTTPS.
      assert.equal((await fetch(`${info.loadBalancer.url}/healthz`)).status, 200);
      assert.equal(await httpsStatus(`${info.loadBalancer.httpsUrl}/healthz`, readFileSync(info.loadBalancer.caFile)), 200);
      const admin = await new Api(info.loadBalancer.url).login('admin', ADMIN_PASSWORD);
      await waitFor('the three devices online', async () => (await admin.get<{ total: number }>('/api/v1/devices?presence=online&limit=1')).body.total === 3, { timeoutMs: 60_000 });

      processes = descendantsOf(child.pid!);
      for (const pid of pids.slice(1)) assert.ok(processes.includes(pid), `pid ${pid} is the command's child`);
      // Ctrl-C in a terminal: SIGINT to the whole foreground process group.
      process.kill(-child.pid!, 'SIGINT');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 60 s after Ctrl-C'), 60_000))]);
      assert.equal(code, 0, out);
      await waitFor('every process it started gone', () => processes.every((pid) => !alive(pid)), { timeoutMs: 5_000 })
        .catch(() => assert.fail(`left running: ${processes.filter(alive).map((pid) => `${pid} ${safeCmdline(pid)}`).join('; ')}`));
      assert.equal(await databaseExists(TEST_PG_URL!, info.database.name), false, 'the database was dropped');
      assert.ok(existsSync(file));
      assert.ok((JSON.parse(readFileSync(file, 'utf8')) as ClusterJson).stoppedAt, 'cluster.json says it stopped');
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
      for (const pid of processes) if (alive(pid)) process.kill(pid, 'SIGKILL');
      dir.cleanup();
    }
  });
});

function safeCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}
