export { Agent, type AgentOptions, type AgentEvents, type AgentState } from './agent.js';
export {
  createDriver,
  assertDriverAvailable,
  isDriverName,
  DRIVER_NAMES,
  DriverError,
  DriverErrorCodes,
  DRIVER_ERROR_CODES,
  isDriverError,
  type Driver,
  type DriverErrorCode,
  type OperationContext,
  type SimOperation,
  type DriverHostFacts,
  type DriverName,
  type DriverOptionsMap,
  type SimDriverOptions,
} from './drivers/index.js';
export { AgentError, AgentErrorCodes, isAgentError, describeError, type AgentErrorCode } from './errors.js';
export { StateDir, type DeviceIdentity, type Credential } from './identity/index.js';
export { TaskJournal, TaskRunner, JOURNAL_FILE, type JournalEntry, type TaskJournalOptions, type TaskRunnerOptions, type TaskRunnerEvents, type TaskChannel } from './tasks/index.js';
export { Backoff, fullJitterDelay, backoffCeiling, sleep, type BackoffOptions } from './util/backoff.js';
export { AGENT_NODE_FLAGS } from './update/supervisor.js';
