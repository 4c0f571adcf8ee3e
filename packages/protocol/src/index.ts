export * from './topics.js';
export * from './validate.js';
export * from './canonical-json.js';
export * from './mqtt/host-facts.js';
export * from './mqtt/vm.js';
export * from './mqtt/messages.js';
export * from './mqtt/enrollment.js';
export * from './mqtt/tasks.js';
export * from './api/common.js';
export * from './api/users.js';
export * from './api/devices.js';
export * from './api/enrollment-tokens.js';
export * from './api/tasks.js';
export * from './api/fleet.js';
export * from './api/cluster.js';
export * from './api/history.js';
export * from './api/audit.js';
export * from './api/api-tokens.js';
export * from './api/artifacts.js';
export * from './api/groups.js';
export * from './api/rollouts.js';

export * from './constants.js';
export * from './units.js';
export * from './routes/index.js';
export { schemaOf } from './routes/schema-of.js';

/** Version of the Pallas programs built from this repository. */
export const PALLAS_VERSION = '0.1.0';
