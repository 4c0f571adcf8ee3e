import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from './agent.js';
import { USAGE, isConfigError, loadConfig } from './config/config.js';
import { createDriver } from './drivers/index.js';
import { AgentErrorCodes, describeError, isAgentError } from './errors.js';
import { SelfUpdater } from './update/self-updater.js';
import { lineLogger } from './util/line-logger.js';
import { ENTRY_ENV, RESTART_FOR_UPDATE_EXIT_CODE, SUPERVISED_ENV } from './update/update-files.js';
import { AGENT_VERSION } from './version.js';

/**
 * `pallas-agent` (run the agent). Exit status: 0 after a signal or a decommission, 1 on a fatal runtime
 * error (credential refused, device retired, enrollment refused), 2 on bad configuration,
 * 10 to ask the supervisor to restart into an installed update (`pallas-agent supervise`). The agent opens no listening socket: every connection is outbound.
 */
export async function runAgent(): Promise<number> {
  let invocation;
  try {
    invocation = await loadConfig(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`pallas-agent: ${describeError(err)}\n`);
    return isConfigError(err) ? 2 : 1;
  }
  if (invocation.action === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (invocation.action === 'version') {
    process.stdout.write(`pallas-agent ${AGENT_VERSION}\n`);
    return 0;
  }
  const { config } = invocation;
  // pino's format, without pino (docs/benchmarks.md, "Agent footprint").
  const logger = lineLogger('pallas-agent', config.logLevel);
  // The sim host keeps its VMs beside the agent's state, so they outlive a restart as a real host's do.
  // The qemu driver's VM folders default to <stateDir>/qemu (resolved in the config).
  const options =
    config.driver === 'sim'
      ? { stateFile: join(config.stateDir, 'sim-host.json'), ...config.sim }
      : config.driver === 'qemu'
        ? config.qemu
        : { ...config.esxi, warn: (message: string) => logger.warn(message) };
  const driver = await createDriver(config.driver, options);
  let restartForUpdate: () => void = () => {};
  // Only under the supervisor can the agent update itself: someone must start the new version
  // and roll it back. Run alone, an agent.update task fails `unsupported` and says so.
  const updater = process.env[SUPERVISED_ENV] === '1'
    ? new SelfUpdater({ stateDir: config.stateDir, version: AGENT_VERSION, entry: process.env[ENTRY_ENV] || process.argv[1]!, logger, requestRestart: () => restartForUpdate() })
    : undefined;
  const agent = new Agent({ stateDir: config.stateDir, driver, manager: config.manager, token: config.token, ...(config.ca ? { ca: readFileSync(config.ca, 'utf8') } : {}), reEnroll: config.reEnroll, logger, downloads: config.downloads, progressIntervalMs: config.progressIntervalMs, ...(updater ? { updater } : {}) });

  const exitCode = new Promise<number>((resolve) => {
    restartForUpdate = () => {
      logger.warn('restarting into the new agent version');
      resolve(RESTART_FOR_UPDATE_EXIT_CODE);
    };
    if (updater) {
      // A supervisor killed outright (SIGKILL, OOM) leaves this agent running; the next
      // supervisor would start a second one on the same state dir, and the two would keep
      // taking over each other's MQTT session. Reparented means orphaned: stop.
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid === parent) return;
        logger.error({ supervisor: parent }, 'the supervisor is gone; stopping');
        resolve(1);
      }, 2000).unref();
    }
    agent.on('decommissioned', (reason) => {
      logger.warn({ reason }, 'device decommissioned; marked retired, credential deleted, exiting');
      resolve(0);
    });
    agent.on('credential-rejected', (err) => {
      // The message already says how to enroll again (--re-enroll --token).
      process.stderr.write(`pallas-agent: ${describeError(err)}\n`);
      resolve(1);
    });
    agent.on('error', (err) => {
      process.stderr.write(`pallas-agent: ${describeError(err)}\n`);
      resolve(1);
    });
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'stopping');
      agent.stop().then(() => resolve(0), () => resolve(1));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });

  try {
    await agent.start();
  } catch (err) {
    process.stderr.write(`pallas-agent: ${describeError(err)}\n`);
    if (isConfigError(err)) return 2;
    if (isAgentError(err, AgentErrorCodes.STATE_INVALID)) return 2;
    return 1;
  }
  logger.info({ device: agent.deviceId, stateDir: config.stateDir, driver: config.driver }, 'agent started');
  const code = await exitCode;
  await agent.stop();
  return code;
}

