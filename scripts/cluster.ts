// `npm run cluster -- --managers 3 --devices 20`: a cluster on this machine to try
// (docs/scale-out.md). Mosquitto, a fresh PostgreSQL database on the local server, the
// managers and nginx, on free ports, and simulated devices enrolled through the load
// balancer. Writes <data dir>/cluster.json; Ctrl-C stops everything it started.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ADMIN_PASSWORD, BIN, createEnrollmentToken, startCluster, startNode, type Cluster, type Proc } from '@pallas/testkit';

const { values } = parseArgs({
  options: {
    managers: { type: 'string', default: '3' },
    devices: { type: 'string', default: '20' },
    'data-dir': { type: 'string', default: 'pallas-cluster' },
    'pg-url': { type: 'string', default: process.env.PALLAS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('Usage: npm run cluster -- [--managers 3] [--devices 20] [--data-dir pallas-cluster] [--pg-url postgres://…]');
  process.exit(0);
}
const managers = Number(values.managers);
const devices = Number(values.devices);
if (!Number.isInteger(managers) || managers < 1 || managers > 16) throw new Error('--managers must be 1..16');
if (!Number.isInteger(devices) || devices < 0 || devices > 10_000) throw new Error('--devices must be 0..10000');
const dir = resolve(values['data-dir']!);

let starting: Promise<Cluster> | undefined;
let cluster: Cluster | undefined;
let sim: Proc | undefined;
let stopping = false;
async function stop(code: number): Promise<void> {
  if (!stopping) {
    stopping = true;
    console.log('\nstopping the devices, nginx, the managers and Mosquitto; dropping the database');
    // Interrupted while starting: what was started is stopped once the start is over.
    try {
      cluster ??= await starting?.catch(() => undefined);
      await sim?.stop();
      await cluster?.close();
      // The file stays in the data dir: it says the pids in it are gone.
      cluster?.describe('stoppedAt', new Date().toISOString());
    } catch (err) {
      console.error('could not stop everything:', err);
      code = code || 1;
    }
    process.exit(code);
  }
  // A second Ctrl-C while stopping: the stop goes on, this process waits for it.
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  console.log(`starting Mosquitto, a fresh PostgreSQL database, ${managers} managers and nginx…`);
  starting = startCluster({ managers, pgUrl: values['pg-url'], dir });
  cluster = await starting;
  const hold = () => new Promise<never>(() => {}); // Ctrl-C came meanwhile: stop() ends this process
  if (stopping) await hold();
  // Ctrl-C reaches this process (and, from a terminal, its children too): it stops them all.
  cluster.describe('controller', { pid: process.pid, stop: `kill -INT ${process.pid} (or Ctrl-C where it runs): stops every process listed here and drops the database` });
  if (devices > 0) {
    const token = await createEnrollmentToken(await cluster.admin(), { maxUses: devices });
    if (stopping) await hold();
    const stateDir = join(dir, 'devices');
    sim = startNode(BIN.sim, ['--manager', cluster.url, '--token', token, '--devices', String(devices), '--state-dir', stateDir]);
    cluster.describe('devices', { pid: sim.pid, count: devices, stateDir, note: 'one pallas-sim process runs every simulated device' });
  }
  if (stopping) await hold();
  console.log(`
Pallas cluster is running (${managers} managers, ${devices} simulated devices)
  Console:   ${cluster.url}/   (through nginx; HTTPS: ${cluster.httpsUrl}/, CA ${cluster.caFile})
  Admin:     admin / ${ADMIN_PASSWORD}
  Managers:  ${cluster.managers.map((m) => m.httpUrl).join('  ')}
  Broker:    ${cluster.broker.url}   Database: ${cluster.databaseUrl}
  Processes: ${join(dir, 'cluster.json')}

  npx pallas login --server ${cluster.url} -u admin -p '${ADMIN_PASSWORD}'
  npx pallas cluster; npx pallas devices ls

Ctrl-C (or kill -INT ${process.pid}) stops everything.`);
} catch (err) {
  console.error(err);
  await stop(1);
}
