/**
 * The enrollment API against `GET /healthz` on the same manager, both driven by the same light
 * client (bench/lib/light-http.ts), in alternating rounds so that a neighbour's load falls on
 * both sides of each ratio. Run after a build:
 *
 *   npx tsx bench/standalone/enroll-api.ts [--requests 2000] [--concurrency 100] [--rounds 3] [--store sqlite|postgres]
 *
 * PALLAS_BENCH_PROFILE=<dir> writes the manager's CPU profile there (summarize it with
 * bench/standalone/profile-summary.mjs). Prints one line per round and the median ratio.
 * `--enroll-only` skips the counted `GET /healthz` rounds, so that a profile holds the
 * enrollments' work alone (after one warm-up of each side) and its shares are an enrollment's.
 *
 * Each round also prints the manager's CPU time per request on each side (from
 * /proc/<pid>/stat, 10 ms ticks): rates swing with what the neighbours run on the two cores,
 * the manager's CPU per request much less, so its ratio says whether a change made the
 * enrollment cheaper when the rates alone cannot tell.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startManagerProcess } from '@pallas/testkit';
import { lightHttp, requestRate } from '../lib/light-http.js';
import { statusPayloads } from '../scenarios/fleet.js';
import { cpuSeconds, profileNodeArgs } from '../lib/proc.js';

const { values } = parseArgs({ options: {
  requests: { type: 'string', default: '2000' },
  concurrency: { type: 'string', default: '100' },
  rounds: { type: 'string', default: '3' },
  store: { type: 'string', default: 'sqlite' },
  'enroll-only': { type: 'boolean', default: false },
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
  const cpuSec = () => cpuSeconds(manager.pid);
  const measured = async (run: () => Promise<number>) => {
    const c0 = cpuSec();
    const rate = await run();
    return { rate, cpuUs: ((cpuSec() - c0) * 1e6) / requests };
  };
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (let r = 1; r <= rounds; r++) {
    const h = values['enroll-only'] ? { rate: NaN, cpuUs: NaN } : await measured(healthz);
    const e = await measured(enroll);
    ratios.push(e.rate / h.rate);
    cpuRatios.push(h.cpuUs / e.cpuUs);
    console.log(`round ${r}: enroll ${e.rate.toFixed(0)}/s, GET /healthz ${h.rate.toFixed(0)}/s, ratio ${(e.rate / h.rate).toFixed(2)}x; `
      + `manager CPU per request ${e.cpuUs.toFixed(0)} µs / ${h.cpuUs.toFixed(0)} µs (${(h.cpuUs / e.cpuUs).toFixed(2)}x); load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  }
  console.log(`median ratio ${median(ratios).toFixed(2)}x, manager CPU per request ratio ${median(cpuRatios).toFixed(2)}x (${values.store}, ${requests} requests, ${concurrency} in flight)`);
  http.close();
} finally {
  await manager.close();
}
