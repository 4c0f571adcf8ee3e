import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PallasClient } from '@pallas/client';
import { Api } from './api.js';
import { TEST_PG_URL, createTestDatabase } from './postgres.js';
import { ADMIN_PASSWORD, copyClusterKeys, startManagerProcess, type ManagerProcess } from './manager.js';
import { startMosquitto, type RunningMosquitto } from './mosquitto.js';
import { startNginx, type Nginx } from './nginx.js';
import { tempDir } from './temp.js';

export interface Cluster {
  /** Holds the managers' data dirs, the artifact store and `cluster.json`. */
  dir: string;
  broker: RunningMosquitto;
  nginx: Nginx;
  /** Every manager started so far, by index; a killed one stays until restarted. */
  managers: ManagerProcess[];
  databaseUrl: string;
  /** The database's name on the server, and the server's pid when it can be read (the server is not the cluster's: never stop it). */
  database: { name: string; serverPid: number | null };
  /** The shared artifact store folder (a shared mount in production). */
  artifactsDir: string;
  /** The load balancer's plain HTTP URL (what test clients use) and its HTTPS URL. */
  url: string;
  httpsUrl: string;
  /**
   * The CA of nginx's certificate: the managers' own CA (the one they hand to agents to pin),
   * which signed a certificate for 127.0.0.1 made for nginx.
   */
  caFile: string;
  api: Api;
  admin(): Promise<Api>;
  client(server?: string): Promise<PallasClient>;
  /** SIGKILL of one manager (it stays in `managers`, dead). */
  kill(index: number): Promise<void>;
  /**
   * Starts manager `index` again on its data dir and database; nginx sends it traffic again.
   * `env` is added to its environment (e.g. a crash-window hold, docs/testing.md).
   */
  restart(index: number, options?: { env?: NodeJS.ProcessEnv }): Promise<ManagerProcess>;
  /**
   * Adds an entry to `cluster.json` (e.g. processes started beside the cluster: simulated
   * devices, the command that started it) and writes the file again.
   */
  describe(key: string, value: unknown): void;
  close(): Promise<void>;
}

/**
 * Several real manager processes on one fresh PostgreSQL database and one Mosquitto, behind
 * nginx: the topology of docs/scale-out.md on one machine, for tests, the benchmark and
 * `npm run cluster`.
 */
export async function startCluster(opts: {
  managers?: number;
  pgUrl?: string;
  managerArgs?: string[];
  /** Options for each manager's node, e.g. `--cpu-prof` (the benchmark's PALLAS_BENCH_PROFILE). */
  nodeArgs?: string[];
  /** Where the managers' data dirs, the artifact store and cluster.json go; default a temp dir removed by `close`. */
  dir?: string;
} = {}): Promise<Cluster> {
  const count = opts.managers ?? 3;
  const pgUrl = opts.pgUrl ?? TEST_PG_URL;
  if (!pgUrl) throw new Error('a cluster needs PostgreSQL: set PALLAS_TEST_PG_URL');
  const root = opts.dir ? { path: opts.dir, cleanup: () => {} } : tempDir('pallas-cluster-');
  mkdirSync(root.path, { recursive: true });
  const artifactsDir = join(root.path, 'artifacts');
  mkdirSync(artifactsDir, { recursive: true });
  const db = await createTestDatabase(pgUrl);
  const broker = await startMosquitto();
  const managers: ManagerProcess[] = [];
  let nginx: Nginx | undefined;
  const args = [
    '--broker-url', broker.managerUrl,
    '--mqtt-public-url', broker.url,
    '--artifacts-dir', artifactsDir,
    '--trust-proxy', '127.0.0.1',
    ...(opts.managerArgs ?? []),
  ];
  const dataDirOf = (i: number) => join(root.path, `manager-${i + 1}`);
  const start = async (i: number, env?: NodeJS.ProcessEnv) => {
    const m = await startManagerProcess({ dataDir: dataDirOf(i), database: { url: db.url }, args, ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}), ...(env ? { env } : {}) });
    managers[i] = m;
    return m;
  };
  try {
    // The first manager makes the keys and the CA; the others start with copies of them.
    const first = await start(0);
    for (let i = 1; i < count; i++) copyClusterKeys(first.dataDir, dataDirOf(i));
    await Promise.all(Array.from({ length: count - 1 }, (_, k) => start(k + 1)));
    // nginx's certificate is issued by the managers' CA, so that what agents pin holds for it.
    nginx = await startNginx({
      upstreams: managers.map((m) => new URL(m.httpUrl).host),
      issuer: { certFile: join(first.dataDir, 'tls', 'ca.crt'), keyFile: join(first.dataDir, 'tls', 'ca.key') },
    });
  } catch (err) {
    await Promise.all(managers.map((m) => m.kill()));
    await nginx?.stop();
    await broker.cleanup();
    await db.drop();
    root.cleanup();
    throw err;
  }
  const lb = nginx;
  const api = new Api(lb.httpUrl);
  const upstreams = () => managers.filter((m) => m.child.exitCode === null && m.child.signalCode === null).map((m) => new URL(m.httpUrl).host);
  const extras: Record<string, unknown> = {};
  const writeDescription = () => writeFileSync(join(root.path, 'cluster.json'), JSON.stringify({ ...describeCluster(cluster), ...extras }, null, 2));
  const cluster: Cluster = {
    dir: root.path, broker, nginx: lb, managers, databaseUrl: db.url, database: { name: db.name, serverPid: db.serverPid }, artifactsDir,
    url: lb.httpUrl, httpsUrl: lb.httpsUrl, caFile: lb.caFile, api,
    admin: () => api.login('admin', ADMIN_PASSWORD),
    client: (server = lb.httpUrl) => PallasClient.login({ server, username: 'admin', password: ADMIN_PASSWORD }),
    async kill(index) {
      await managers[index]!.kill();
    },
    async restart(index, options) {
      const m = await start(index, options?.env);
      // Its plain HTTP port is new: nginx is told.
      await lb.setUpstreams(upstreams());
      writeDescription();
      return m;
    },
    describe(key, value) {
      extras[key] = value;
      writeDescription();
    },
    async close() {
      await lb.stop();
      await Promise.all(managers.map((m) => m.stop()));
      await broker.cleanup();
      await db.drop();
      root.cleanup();
    },
  };
  writeDescription();
  return cluster;
}

/**
 * What `cluster.json` says (without the entries added by `describe`): every process's pid and
 * URL, and for the database, which is not a process of its own but a database on a server
 * that was running before, its name, the server's pid (for reference: not to be stopped) and
 * how to drop it.
 */
export function describeCluster(c: Cluster) {
  const server = new URL(c.databaseUrl);
  server.pathname = '/postgres';
  return {
    loadBalancer: { pid: c.nginx.proc.pid, url: c.url, httpsUrl: c.httpsUrl, caFile: c.caFile },
    managers: c.managers.map((m) => ({ pid: m.pid, url: m.httpUrl, dataDir: m.dataDir })),
    broker: { pid: c.broker.pid(), url: c.broker.url },
    database: {
      url: c.databaseUrl,
      name: c.database.name,
      serverPid: c.database.serverPid,
      note: 'a database made for this cluster on a PostgreSQL server it did not start: drop the database, never stop the server',
      drop: `psql '${server.toString()}' -c 'DROP DATABASE IF EXISTS ${c.database.name} WITH (FORCE)'`,
    },
    artifactsDir: c.artifactsDir,
  };
}
