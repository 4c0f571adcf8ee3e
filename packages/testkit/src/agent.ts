import { BIN } from './paths.js';
import { startNode, type Proc } from './process.js';

export interface StartAgentOptions {
  managerUrl: string;
  token?: string;
  stateDir: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** The agent program to run; default the installed one (`bin/pallas-agent.js`), e.g. a bundle. */
  entry?: string;
  /** Flags for node itself (before the script). */
  nodeArgs?: string[];
}

/** Starts `pallas-agent` with the sim driver as a real process. */
export function startAgentProcess(o: StartAgentOptions): Proc {
  return startNode(
    o.entry ?? BIN.agent,
    ['--manager', o.managerUrl, '--state-dir', o.stateDir, '--driver', 'sim', ...(o.token ? ['--token', o.token] : []), ...(o.args ?? [])],
    { PALLAS_LOG_LEVEL: 'info', ...o.env },
    o.nodeArgs ?? [],
  );
}
