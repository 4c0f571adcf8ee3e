import { resolve } from 'node:path';
import { USAGE } from '../config/flags.js';
import { loadSupervisorConfig } from '../config/supervisor-config.js';
import { lineLogger } from '../util/line-logger.js';
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
 * and log level (what it reads it checks: exit 2 before anything is started; the rest the
 * agent checks at its first start, and its exit 2 ends the supervisor too), then runs the
 * `Supervisor` until SIGINT/SIGTERM. `launcher` is the file this process was started from: the
 * installed agent. It imports nothing but Node's own modules and a few small files of this
 * package: no MQTT, no drivers, no schemas, no pino (docs/agent-update.md).
 */
export async function runSupervise(argv: string[], env: NodeJS.ProcessEnv, launcher: string): Promise<number> {
  const invocation = await loadSupervisorConfig(argv, env);
  if (invocation.action === 'help') {
    process.stdout.write(SUPERVISE_USAGE);
    return 0;
  }
  if (invocation.action === 'version') {
    process.stdout.write(`pallas-agent ${AGENT_VERSION} (supervisor)\n`);
    return 0;
  }
  const logger = lineLogger('pallas-agent-supervisor', invocation.logLevel);
  const supervisor = new Supervisor({ stateDir: invocation.stateDir, installed: resolve(launcher), args: argv, logger });
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping the agent');
    supervisor.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  logger.info({ stateDir: invocation.stateDir, installed: launcher, version: AGENT_VERSION }, 'supervisor started');
  return supervisor.run();
}
