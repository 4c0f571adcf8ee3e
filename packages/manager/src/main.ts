import { PALLAS_VERSION } from '@pallas/protocol';
import { startManager } from './app.js';
import { ConfigError, configHelp, loadConfig } from './config/config.js';
import { startDemoFleet } from './demo.js';
import { createManagerLog, type LogFormat } from './logging.js';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`pallas-manager ${PALLAS_VERSION} — the Pallas device manager\n\nOptions (flag > environment > config file):\n${configHelp()}\n`);
  process.exit(0);
}
if (argv.includes('--version')) {
  process.stdout.write(`${PALLAS_VERSION}\n`);
  process.exit(0);
}

let config;
try {
  config = loadConfig(argv);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`pallas-manager: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

// Log lines are held until the banner is out (see logging.ts), so the banner is one block.
const log = createManagerLog({ level: config.logLevel, format: config.logFormat as LogFormat });
let manager;
try {
  manager = await startManager(config, log.logger);
} catch (err) {
  log.releaseAfter('');
  const e = err as NodeJS.ErrnoException & { port?: number };
  const hint = e.code === 'EADDRINUSE' ? ' (is another server using it? pass --http-port 0 / --mqtt-port 0 for any free port)' : '';
  process.stderr.write(`pallas-manager: cannot start: ${e.message}${hint}\n`);
  process.exit(1);
}

const listensEverywhere = (h: string | undefined) => h === undefined || h === '0.0.0.0' || h === '::';
const host = listensEverywhere(config.httpHost) ? '127.0.0.1' : config.httpHost!;
const { ports } = manager;
const base = ports.http !== null ? `http://${host}:${ports.http}` : `https://${host}:${ports.https}`;
const lines = [
  '',
  `Pallas manager ${PALLAS_VERSION} is running${config.production ? ' (production mode)' : ''}`,
  `  Console:    ${base}/   (the web console; log in as admin)`,
  `  API:        ${base}/api/v1   (OpenAPI: ${base}/api/v1/openapi.json)`,
  `  HTTPS:      port ${ports.https}${ports.http !== null ? `; plain HTTP: port ${ports.http}` : ''}`,
  config.brokerUrl
    // Never the managers' credentials: only the broker's address.
    ? `  MQTT:       external broker ${new URL(config.brokerUrl).host} (shared group ${config.brokerShareGroup})`
    : `  MQTT:       TLS port ${ports.mqtts}${ports.mqtt !== null ? `; plain: port ${ports.mqtt}` : ''}`,
];
// Plain listeners carry passwords and tokens in clear: say where they can be reached.
if (ports.http !== null || ports.mqtt !== null) {
  const where = (h: string | undefined) => (h === undefined ? '127.0.0.1 only' : listensEverywhere(h) ? 'all interfaces' : h);
  const mqtt = ports.mqtt !== null ? `, MQTT on ${where(config.mqttHost)}` : '';
  lines.push(`  Plain:      HTTP on ${where(config.httpHost)}${mqtt}   (--http-host/--mqtt-host to change; TLS listens on ${config.httpHost ?? 'all interfaces'})`);
}
lines.push(
  `  TLS:        ${manager.tls.source === 'generated' ? `own CA ${config.dataDir}/tls/ca.crt (agents pin it: pallas-agent --ca)` : `certificate ${config.tlsCert}`}`,
  `  Data dir:   ${config.dataDir}   (ports in ports.json)`,
);
// A generated password is shown once, at the start that created it; one given to us is never
// echoed (it would end up in logs and terminal scrollback at every start).
if (manager.generatedAdminPassword) {
  lines.push(`  Admin:      admin / ${manager.generatedAdminPassword}   (generated; shown only this once, stored hashed)`);
} else if (config.adminPassword) {
  lines.push('  Admin:      admin / the password in PALLAS_ADMIN_PASSWORD');
}
lines.push(
  '',
  'See your devices (in another terminal):',
  `  npx pallas login --server ${base} -u admin${manager.generatedAdminPassword ? ` -p '${manager.generatedAdminPassword}'` : ''}`,
  '  npx pallas devices ls',
  '',
);
log.releaseAfter(lines.join('\n'));

let demo: { stop(): Promise<void> } | undefined;
if (config.demoDevices > 0) {
  demo = await startDemoFleet(manager, config.demoDevices);
  process.stdout.write(`Demo: starting ${config.demoDevices} simulated devices (pallas-sim)\n`);
}

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  manager.logger.info({ signal }, 'shutting down');
  await demo?.stop();
  await manager.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
