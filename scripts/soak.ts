/**
 * `npm run soak`: the fault soak of docs/soak.md. Bounded: the faults last `--minutes`, then
 * the run waits (at most `--settle-sec`) for quiescence, reconciles, prints the counts and
 * exits 0 only when lost = duplicated = stuck = 0.
 *
 *   npm run soak
 *   npm run soak -- --minutes 10 --agents 20 --tasks 400 --seed 1234
 */
import { parseArgs } from 'node:util';
import { TEST_PG_URL, mosquittoMissingReason, nginxMissingReason } from '@pallas/testkit';
import { packetLossMissingReason } from './soak/packet-loss.js';
import { printSoakReport, runSoak } from './soak/run-soak.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '3' },
    agents: { type: 'string', default: '10' },
    tasks: { type: 'string' },
    managers: { type: 'string', default: '3' },
    'settle-sec': { type: 'string', default: '180' },
    seed: { type: 'string' },
  },
});

const missing = [TEST_PG_URL ? undefined : 'PALLAS_TEST_PG_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/postgres)', mosquittoMissingReason(), nginxMissingReason(), packetLossMissingReason()].filter(Boolean);
if (missing.length > 0) {
  console.error(`soak cannot run here:\n  ${missing.join('\n  ')}`);
  process.exit(2);
}

// Ctrl-C (or SIGTERM) ends the fault phase; the run still removes its iptables rules and stops what it started. A second one exits at once
// (the exit handler still removes the rules).
const abort = new AbortController();
const stop = () => {
  if (abort.signal.aborted) process.exit(130);
  console.log('\nstopping: faults off, cleaning up (Ctrl-C again to quit at once)');
  abort.abort();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const report = await runSoak({
  minutes: Number(values.minutes),
  agents: Number(values.agents),
  ...(values.tasks ? { tasks: Number(values.tasks) } : {}),
  managers: Number(values.managers),
  settleSec: Number(values['settle-sec']),
  ...(values.seed ? { seed: Number(values.seed) } : {}),
  signal: abort.signal,
});
printSoakReport(report);
process.exit(report.ok ? 0 : 1);
