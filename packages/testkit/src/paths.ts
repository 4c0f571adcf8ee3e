import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The repository root, found from this file (packages/testkit/dist/paths.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const BIN = {
  manager: join(REPO_ROOT, 'packages/manager/bin/pallas-manager.js'),
  agent: join(REPO_ROOT, 'packages/agent/bin/pallas-agent.js'),
  sim: join(REPO_ROOT, 'packages/sim/bin/pallas-sim.js'),
  cli: join(REPO_ROOT, 'packages/cli/bin/pallas.js'),
};
