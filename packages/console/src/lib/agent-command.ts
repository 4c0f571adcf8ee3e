/** Where the agent keeps its identity: the agent's documented default (docs/agent.md). */
const AGENT_STATE_DIR = '/var/lib/pallas-agent';

/** Quotes a word for a POSIX shell only when it needs it (the CLI's rule, so both print the same). */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command to run on a device to enroll it: the same text `pallas tokens create` prints. */
export function agentCommand(managerUrl: string, token: string): string {
  return `npx pallas-agent --manager ${shellQuote(managerUrl)} --token ${shellQuote(token)} --state-dir ${AGENT_STATE_DIR}`;
}
