/**
 * The enrollment API against `GET /healthz` on the same manager, both driven by the same light
 * client (bench/lib/light-http.ts), in alternating rounds so that a neighbour's load falls on
 * both sides of each ratio. Run after a build:
 *
 *   npx tsx bench/standalone/enroll-api.ts [--requests 2000] [--concurrency 100] [--rounds 3] [--store sqlite|postgres]
 *
 * PALLAS_BENCH_PROFILE=<dir> writes the manager's CPU profile there (summarize it with
 * bench/standalone/profile-summary.mjs). Prints one line per round and the median ratio.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startManagerProcess } from '@pallas/testkit';
import { lightHttp, requestRate } from '../lib/light-http.js';
import { statusPayloads } from '../scenarios/fleet.js';
import { profileNodeArgs } from '../lib/proc.js';

const { values } = parseArgs({ options: {
  requests: { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '100' },
  rounds: { type: 'string', default: '3' },
  store: { type: 'string', default: 'sqlite' },
} });
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);

const manager = await startManagerProcess({
  args: ['--status-interval-sec', '86400'],
  database: values.store === 'postgres' ? 'postgres' : 'sqlite',
  nodeArgs: profileNodeArgs(),
});
try {
  const admin = await manager.client();
  const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: (rounds + 1) * requests } });
  const facts = JSON.parse((await statusPayloads(1))[0]!).facts;
  const http = lightHttp(manager.httpUrl, concurrency);
  const healthz = () => requestRate(http, requests, concurrency, () => ({ method: 'GET', path: '/healthz' }));
  // Each request is a new device: its body is serialized once, as an agent's would be.
  const enroll = () => requestRate(http, requests, concurrency, () => ({
    method: 'POST', path: '/api/v1/enroll', body: JSON.stringify({ token, deviceId: randomUUID(), facts }),
  }));
  // Warm-up of both paths (JIT, statement caches, sockets) before anything is counted.
  await healthz();
  await enroll();
  const ratios: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const h = await healthz();
    const e = await enroll();
    ratios.push(e / h);
    console.log(`round ${r}: enroll ${e.toFixed(0)}/s, GET /healthz ${h.toFixed(0)}/s, ratio ${(e / h).toFixed(2)}x, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }
  ratios.sort((a, b) => a - b);
  console.log(`median ratio ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)}x (${values.store}, ${requests} requests, ${concurrency} in flight)`);
  http.close();
} finally {
  await manager.close();
}
