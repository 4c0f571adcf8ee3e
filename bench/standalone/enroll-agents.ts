/**
 * Full-agent enrollments alone (what the `fleet` scenario's first phase measures), small
 * enough to run under a profiler: N real agents of @pallas/sim enroll against a manager
 * process and come online. Run after a build:
 *
 *   npx tsx bench/standalone/enroll-agents.ts [--devices 2000] [--concurrency 100]
 *   node --cpu-prof --cpu-prof-dir=<dir> --import tsx bench/standalone/enroll-agents.ts   # the simulator's profile
 *   PALLAS_BENCH_PROFILE=<dir> npx tsx bench/standalone/enroll-agents.ts                  # the manager's
 *
 * Prints enrollments/s (start of the fleet to every agent started) and the time to all online.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLimiter, startFleet } from '@pallas/sim';
import { startManagerProcess, tempDir } from '@pallas/testkit';
import { profileNodeArgs } from '../lib/proc.js';

const { values } = parseArgs({ options: {
  devices: { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '100' },
} });
const devices = Number(values.devices);
const dir = tempDir('pallas-enroll-agents-');
const manager = await startManagerProcess({
  dataDir: join(dir.path, 'manager'),
  args: ['--status-interval-sec', '86400', '--keepalive-sec', '60'],
  nodeArgs: profileNodeArgs(),
});
try {
  const admin = await manager.client();
  const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: devices } });
  const t0 = performance.now();
  const fleet = await startFleet({ manager: manager.httpUrl, token, devices, stateDir: join(dir.path, 'fleet'), enrollGate: createLimiter(Number(values.concurrency)) });
  const started = (performance.now() - t0) / 1000;
  await fleet.waitOnline(devices, 120_000);
  const online = (performance.now() - t0) / 1000;
  console.log(`${devices} agents: ${(devices / started).toFixed(0)} enrollments/s (${started.toFixed(2)} s), all online after ${online.toFixed(2)} s, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  await fleet.stop();
} finally {
  await manager.close();
  dir.cleanup();
}
