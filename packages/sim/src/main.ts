import { parseArgs } from 'node:util';
import { DRIVER_ERROR_CODES, describeError, type DriverErrorCode } from '@pallas/agent';
import { PALLAS_VERSION } from '@pallas/protocol';
import { pino } from 'pino';
import { startFleet } from './fleet.js';

const USAGE = `Usage: pallas-sim --manager <url> --token <token> [options]

Runs N simulated devices (real agents with the sim driver) in one process.

Options (flags override PALLAS_* environment variables):
  --manager <url>          manager base URL                         [PALLAS_MANAGER]
  --token <token>          enrollment token with N uses             [PALLAS_TOKEN]
  --devices <n>            number of devices (10)                   [PALLAS_SIM_DEVICES]
  --state-dir <dir>        root of the device state dirs (./pallas-sim-state) [PALLAS_STATE_DIR]
  --concurrency <n>        enrollments in flight (50)               [PALLAS_SIM_CONCURRENCY]
  --status-interval <sec>  override the manager's status interval   [PALLAS_STATUS_INTERVAL]
  --latency <ms>           how long each VM operation takes (50)    [PALLAS_SIM_LATENCY]
  --fail-on <op>=<code>    make every device fail an operation, e.g. createVm=host_error
                           (repeatable; ops: createVm powerVm updateVm deleteVm applyPatch)
  --log-level <level>      fatal|error|warn|info|debug|trace|silent (warn) [PALLAS_LOG_LEVEL]
  --help, --version
`;

class UsageError extends Error {}

function positiveInt(name: string, value: string | undefined, fallback: number | undefined): number | undefined {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got "${value}"`);
  return n;
}

const SIM_OPS = ['createVm', 'powerVm', 'updateVm', 'deleteVm', 'applyPatch'] as const;

/** `--fail-on createVm=host_error` (repeatable) as the sim driver's `failOn`. */
function failOnOf(specs: string[]): Partial<Record<(typeof SIM_OPS)[number], DriverErrorCode>> | undefined {
  if (specs.length === 0) return undefined;
  const out: Partial<Record<(typeof SIM_OPS)[number], DriverErrorCode>> = {};
  for (const spec of specs) {
    const [op, code] = spec.split('=');
    if (!SIM_OPS.includes(op as never)) throw new UsageError(`--fail-on: unknown operation "${op}" (one of ${SIM_OPS.join(', ')})`);
    if (!DRIVER_ERROR_CODES.includes(code as DriverErrorCode)) throw new UsageError(`--fail-on: unknown error code "${code}" (one of ${DRIVER_ERROR_CODES.join(', ')})`);
    out[op as (typeof SIM_OPS)[number]] = code as DriverErrorCode;
  }
  return out;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      allowPositionals: false,
      options: {
        manager: { type: 'string' },
        token: { type: 'string' },
        devices: { type: 'string' },
        'state-dir': { type: 'string' },
        concurrency: { type: 'string' },
        'status-interval': { type: 'string' },
        latency: { type: 'string' },
        'fail-on': { type: 'string', multiple: true },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (err) {
    process.stderr.write(`pallas-sim: ${describeError(err)}\n`);
    return 2;
  }
  if (values.help) return process.stdout.write(USAGE), 0;
  if (values.version) return process.stdout.write(`pallas-sim ${PALLAS_VERSION}\n`), 0;

  const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name]);
  let options;
  try {
    const manager = values.manager ?? env('PALLAS_MANAGER');
    const token = values.token ?? env('PALLAS_TOKEN');
    if (!manager) throw new UsageError('--manager (or PALLAS_MANAGER) is required');
    if (!token) throw new UsageError('--token (or PALLAS_TOKEN) is required');
    const level = values['log-level'] ?? env('PALLAS_LOG_LEVEL') ?? 'warn';
    if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) throw new UsageError(`invalid log level "${level}"`);
    options = {
      manager,
      token,
      devices: positiveInt('--devices', values.devices ?? env('PALLAS_SIM_DEVICES'), 10)!,
      stateDir: values['state-dir'] ?? env('PALLAS_STATE_DIR') ?? 'pallas-sim-state',
      concurrency: positiveInt('--concurrency', values.concurrency ?? env('PALLAS_SIM_CONCURRENCY'), 50),
      statusIntervalSec: positiveInt('--status-interval', values['status-interval'] ?? env('PALLAS_STATUS_INTERVAL'), undefined),
      latencyMs: positiveInt('--latency', values.latency ?? env('PALLAS_SIM_LATENCY'), undefined),
      failOn: failOnOf(values['fail-on'] ?? []),
      // Logs go to stderr so that stdout carries only the progress lines.
      logger: pino({ name: 'pallas-sim', level }, pino.destination(2)),
    };
  } catch (err) {
    process.stderr.write(`pallas-sim: ${describeError(err)}\n`);
    return 2;
  }

  let fleet;
  try {
    fleet = await startFleet(options);
  } catch (err) {
    process.stderr.write(`pallas-sim: ${describeError(err)}\n`);
    return 1;
  }
  const { devices } = options;
  let last = '';
  let allOnline = false;
  const progress = setInterval(() => {
    const online = fleet.onlineCount();
    const line = `${fleet.enrolledCount()}/${devices} enrolled, ${online}/${devices} online`;
    if (line !== last) process.stdout.write(`${line}\n`);
    last = line;
    if (online === devices && !allOnline) process.stdout.write(`${devices} devices online\n`);
    allOnline = online === devices;
  }, 1000);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  clearInterval(progress);
  process.stdout.write('stopping…\n');
  await fleet.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pallas-sim: ${describeError(err)}\n`);
    process.exit(1);
  },
);
