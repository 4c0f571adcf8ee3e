import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import type { CreateEnrollmentToken } from '@pallas/protocol';
import { join } from 'node:path';
import { PallasClient } from '@pallas/client';
import { Api } from './api.js';
import { managerDatabase, type DatabaseChoice, type TestDatabaseKind } from './database.js';
import { BIN } from './paths.js';
import { startNode, type Proc } from './process.js';
import { tempDir } from './temp.js';
import { waitFor } from './wait.js';

export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface ManagerProcess extends Proc {
  dataDir: string;
  httpUrl: string;
  mqttPort: number;
  mqttUrl: string;
  /** HTTPS base URL (the manager's own CA signs its certificate: `caFile`). */
  httpsUrl: string;
  mqttsPort: number;
  /** The manager's generated CA certificate (PEM). */
  caFile: string;
  /** Unauthenticated API caller. */
  api: Api;
  /** The store it runs on: `sqlite` or `postgres` (see `StartManagerOptions.database`). */
  databaseKind: TestDatabaseKind;
  /** Its database URL: pass `{ url }` as `database` to restart a manager on the same data. */
  databaseUrl: string;
  /** API caller logged in as the first admin. */
  admin(): Promise<Api>;
  /** A @pallas/client logged in as the first admin. */
  client(): Promise<PallasClient>;
  /** Stops the process and removes the data dir (unless it was given) and a PostgreSQL database it made. */
  close(): Promise<void>;
}

export interface StartManagerOptions {
  dataDir?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Options for node itself, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /**
   * The store: `sqlite` (the default file in the data dir), `postgres` (a fresh database on
   * PALLAS_TEST_PG_URL's server, dropped by `close`) or `{ url }` (an existing one, kept).
   * Default: PALLAS_TEST_DATABASE, else `sqlite` (the runner's PostgreSQL pass sets it).
   */
  database?: DatabaseChoice;
  /**
   * Another manager of the same cluster (same database): its keys and CA are copied into this
   * one's data dir before it starts, as docs/scale-out.md asks of operators.
   */
  sharingKeysWith?: { dataDir: string };
}

/**
 * The files every manager of a cluster must share (docs/scale-out.md): the key that signs
 * artifact manifests, the secret that signs download URLs, and the TLS material (one CA, so
 * that what a device pinned at enrollment holds whichever manager answers).
 */
export const CLUSTER_KEY_FILES = ['signing-key.pem', 'download-url.key', 'tls'];

/** Copies a manager's cluster keys into another data dir (made if missing). */
export function copyClusterKeys(fromDataDir: string, toDataDir: string): void {
  mkdirSync(toDataDir, { recursive: true, mode: 0o700 });
  for (const f of CLUSTER_KEY_FILES) cpSync(join(fromDataDir, f), join(toDataDir, f), { recursive: true });
}

/**
 * Starts `pallas-manager` as a real process on loopback with ephemeral ports and waits
 * until it answers /readyz. Ports come from `<data-dir>/ports.json`.
 */
export async function startManagerProcess(options: StartManagerOptions = {}): Promise<ManagerProcess> {
  const tmp = options.dataDir ? undefined : tempDir('pallas-manager-');
  const dataDir = options.dataDir ?? tmp!.path;
  if (options.sharingKeysWith) copyClusterKeys(options.sharingKeysWith.dataDir, dataDir);
  const portsFile = join(dataDir, 'ports.json');
  const database = await managerDatabase(options.database, dataDir);
  const proc = startNode(
    BIN.manager,
    ['--data-dir', dataDir, '--http-port', '0', '--mqtt-port', '0', '--https-port', '0', '--mqtts-port', '0', '--http-host', '127.0.0.1', '--mqtt-host', '127.0.0.1', ...database.args, ...(options.args ?? [])],
    { PALLAS_ADMIN_PASSWORD: ADMIN_PASSWORD, PALLAS_LOG_LEVEL: 'warn', ...options.env },
    options.nodeArgs,
  );
  let ports: { http: number; mqtt: number; https: number; mqtts: number };
  try {
    // The banner is printed after ports.json is written, so a stale file from an earlier
    // run on the same data dir is never read.
    ports = await waitFor('manager to start', () => {
      if (proc.child.exitCode !== null) throw new Error(`manager exited early:\n${proc.output()}`);
      return proc.output().includes('is running') && (JSON.parse(readFileSync(portsFile, 'utf8')) as typeof ports);
    }, { timeoutMs: 60_000 }); // a first start makes the manager's CA; a loaded CI machine needs the margin
  } catch (err) {
    await proc.kill();
    await database.dispose();
    tmp?.cleanup();
    throw err;
  }
  const httpUrl = `http://127.0.0.1:${ports.http}`;
  const api = new Api(httpUrl);
  return {
    ...proc,
    dataDir,
    httpUrl,
    mqttPort: ports.mqtt,
    mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
    httpsUrl: `https://127.0.0.1:${ports.https}`,
    mqttsPort: ports.mqtts,
    caFile: join(dataDir, 'tls', 'ca.crt'),
    api,
    databaseKind: database.kind,
    databaseUrl: database.url,
    admin: () => api.login('admin', ADMIN_PASSWORD),
    client: () => PallasClient.login({ server: httpUrl, username: 'admin', password: ADMIN_PASSWORD }),
    async close() {
      await proc.stop();
      await database.dispose();
      tmp?.cleanup();
    },
  };
}

/** Creates an enrollment token through the API and returns its secret. */
export async function createEnrollmentToken(admin: Api, body: CreateEnrollmentToken = { maxUses: 100 }): Promise<string> {
  const client = new PallasClient({ server: admin.baseUrl, token: admin.token });
  return (await client.call('createEnrollmentToken', { body })).token;
}
