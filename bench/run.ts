/**
 * `npm run bench`: runs the benchmark scenarios, prints a table per scenario and writes
 * the figures as JSON to bench/results/. Every figure is set beside a baseline measured
 * in the same run, so results compare across machines as ratios.
 *
 *   npm run bench -- --devices 2000 --status-rate 10000 --status-seconds 10
 *   npm run bench -- --scenario tasks --rounds 5 --fleet-dir /var/tmp
 *   npm run bench -- --scenario downloads --download-mib 512 --cut-mib 32
 *   npm run bench -- --scenario console --console-devices 10000
 *   npm run bench -- --scenario rollout --devices 2000
 *   npm run bench -- --scenario cluster --devices 2000        (needs Mosquitto, nginx; PostgreSQL at PALLAS_TEST_PG_URL, default the local server)
 *   npm run bench -- --scenario cluster --rounds 3 --warmup-rounds 3   (fan-outs measured, after unmeasured ones)
 *   npm run bench -- --scenario scale --devices 15000 --sizes 1000,5000,10000,15000
 *   npm run bench -- --scenario scale --devices 15000 --store postgres      (needs PALLAS_TEST_PG_URL)
 *   npm run bench -- --scenario agent --rounds 3 --download-mib 1024 --settle-seconds 10 [--agent-bundle]
 *   npm run bench -- --scenario history --devices 10000 --days 7   (PostgreSQL too with PALLAS_TEST_PG_URL)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runFleet } from './scenarios/fleet.js';
import { runTasks } from './scenarios/tasks.js';
import { runDownloads } from './scenarios/downloads.js';
import { runConsole } from './scenarios/console.js';
import { runRollout } from './scenarios/rollout.js';
import { runCluster } from './scenarios/cluster.js';
import { runScale } from './scenarios/scale.js';
import { runAgent } from './scenarios/agent.js';
import { runHistory } from './scenarios/history.js';
import { printTable, type Row } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '2000' },
    'status-rate': { type: 'string', default: '10000' },
    'status-seconds': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '100' },
    scenario: { type: 'string', default: 'all' },
    'download-mib': { type: 'string' },
    'settle-seconds': { type: 'string', default: '10' },
    'agent-bundle': { type: 'boolean', default: false },
    'cut-mib': { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    'warmup-rounds': { type: 'string', default: '3' },
    'fleet-dir': { type: 'string' },
    'console-devices': { type: 'string', default: '10000' },
    sizes: { type: 'string', default: '1000,5000,10000,15000' },
    'ramp-seconds': { type: 'string', default: '5' },
    store: { type: 'string', default: 'sqlite' },
    days: { type: 'string', default: '7' },
    'round-seconds': { type: 'string', default: '60' },
    'report-every-sec': { type: 'string', default: '30' },
  },
});

function storeKind(value: string): 'sqlite' | 'postgres' {
  if (value !== 'sqlite' && value !== 'postgres') throw new Error(`--store is sqlite or postgres, not "${value}"`);
  return value;
}

const options = {
  devices: Number(values.devices),
  statusRate: Number(values['status-rate']),
  statusSeconds: Number(values['status-seconds']),
  concurrency: Number(values.concurrency),
};

const started = new Date();
const scenarios = values.scenario === 'all' ? ['fleet', 'tasks', 'downloads', 'console'] : values.scenario!.split(',');
const sized = ['fleet', 'tasks', 'rollout', 'cluster', 'scale', 'history'];
console.log(`Pallas benchmark: ${scenarios.join(', ')}${scenarios.some((s) => sized.includes(s)) ? ` with ${options.devices} devices` : ''} on ${process.platform}/${process.arch}, Node ${process.version}`);
const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
for (const scenario of scenarios) {
  let result: { rows: Row[]; raw: Record<string, unknown> };
  if (scenario === 'fleet') result = await runFleet(options);
  else if (scenario === 'tasks') result = await runTasks({ devices: options.devices, rounds: Number(values.rounds), ...(values['fleet-dir'] ? { fleetDir: values['fleet-dir'] } : {}) });
  else if (scenario === 'downloads') result = await runDownloads({ sizeMiB: Number(values['download-mib'] ?? 512), cutMiB: Number(values['cut-mib']), rounds: Number(values.rounds) });
  else if (scenario === 'rollout') result = await runRollout({ devices: options.devices, rounds: Number(values.rounds) });
  else if (scenario === 'console') result = await runConsole({ devices: Number(values['console-devices']), rounds: Number(values.rounds) });
  else if (scenario === 'cluster') result = await runCluster({ devices: options.devices, rounds: Number(values.rounds), warmups: Number(values['warmup-rounds']), statusRate: options.statusRate, statusSeconds: options.statusSeconds });
  else if (scenario === 'scale') result = await runScale({ devices: options.devices, sizes: values.sizes!.split(',').map(Number), rampSeconds: Number(values['ramp-seconds']), store: storeKind(values.store!) });
  else if (scenario === 'agent') result = await runAgent({ rounds: Number(values.rounds), downloadMiB: Number(values['download-mib'] ?? 1024), settleSeconds: Number(values['settle-seconds']), bundle: values['agent-bundle'] });
  else if (scenario === 'history') {
    result = await runHistory({
      devices: options.devices, days: Number(values.days), rounds: Number(values.rounds), roundSeconds: Number(values['round-seconds']), reportEverySec: Number(values['report-every-sec']),
    });
  } else throw new Error(`unknown scenario ${scenario}: use fleet, tasks, downloads, console, rollout, cluster, scale, agent, history or all`);
  printTable(sized.includes(scenario) ? `${scenario} (${options.devices} devices${scenario === 'scale' ? `, ${values.store}` : ''})` : scenario === 'agent' && values['agent-bundle'] ? 'agent (as a bundle)' : scenario, result.rows);
  const file = join(dir, `${scenario}-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ scenario, startedAt: started.toISOString(), options, rows: result.rows, raw: result.raw }, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
}
// The exit code is 1 when a figure failed its sanity check (printTable sets it).
process.exit();
