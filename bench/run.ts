/**
 * `npm run bench`: runs the benchmark scenarios, prints a table per scenario and writes
 * the figures as JSON to bench/results/. Every figure is set beside a baseline measured
 * in the same run, so results compare across machines as ratios.
 *
 *   npm run bench -- --devices 2000 --status-rate 10000 --status-seconds 10
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runFleet } from './scenarios/fleet.js';
import { printTable } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '2000' },
    'status-rate': { type: 'string', default: '10000' },
    'status-seconds': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '100' },
  },
});

const options = {
  devices: Number(values.devices),
  statusRate: Number(values['status-rate']),
  statusSeconds: Number(values['status-seconds']),
  concurrency: Number(values.concurrency),
};

const started = new Date();
console.log(`Pallas benchmark: fleet of ${options.devices} devices on ${process.platform}/${process.arch}, Node ${process.version}`);
const fleet = await runFleet(options);
printTable(`fleet (${options.devices} devices)`, fleet.rows);

const dir = join(fileURLToPath(new URL('.', import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `fleet-${started.toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ scenario: 'fleet', startedAt: started.toISOString(), options, rows: fleet.rows, raw: fleet.raw }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
process.exit(0);
