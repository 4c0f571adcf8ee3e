import { resolve } from 'node:path';
import { pino } from 'pino';
import { USAGE, loadConfig } from '../config/config.js';
import { AGENT_VERSION } from '../version.js';
import { Supervisor } from './supervisor.js';

export const SUPERVISE_USAGE = `Usage: pallas-agent supervise [agent options]

Runs the agent as a child process and restarts it when it exits; the agent version is
<state-dir>/agent/current.json's, else this installed one. Rolls an agent update back when
the new version exits or does not report healthy in time (docs/agent-update.md). Takes the
agent's options and passes them on as they are.

${USAGE}`;

/**
 * `pallas-agent supervise …`: reads the agent's own configuration only to find the state dir
 * and log level (so a bad configuration fails here, exit 2, before anything is started), then
 * runs the `Supervisor` until SIGINT/SIGTERM. `launcher` is the file this process was started
 * from: the installed agent.
 */
export async function runSupervise(argv: string[], env: NodeJS.ProcessEnv, launcher: string): Promise<number> {
  const invocation = await loadConfig(argv, env);
  if (invocation.action === 'help') {
    process.stdout.write(SUPERVISE_USAGE);
    return 0;
  }
  if (invocation.action === 'version') {
    process.stdout.write(`pallas-agent ${AGENT_VERSION} (supervisor)\n`);
    return 0;
  }
  const { config } = invocation;
  const logger = pino({ name: 'pallas-agent-supervisor', level: config.logLevel });
  const supervisor = new Supervisor({ stateDir: config.stateDir, installed: resolve(launcher), args: argv, logger });
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping the agent');
    supervisor.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  logger.info({ stateDir: config.stateDir, installed: launcher, version: AGENT_VERSION }, 'supervisor started');
  return supervisor.run();
}
