/**
 * The schemas the route table names, each under its exported name. The table says
 * `body: 'VmSpec'`; the manager looks the name up here to validate and to document, and the
 * client's types follow it (`RouteBody<'createVm'>` is `VmSpec`). A new route's schema is
 * exported from its `api/` module, and that is all it takes to be nameable.
 */
export * from '../api/common.js';
export * from '../api/users.js';
export * from '../api/api-tokens.js';
export * from '../api/audit.js';
export * from '../api/devices.js';
export * from '../api/enrollment-tokens.js';
export * from '../api/tasks.js';
export * from '../api/fleet.js';
export * from '../api/cluster.js';
export * from '../api/history.js';
export * from '../api/artifacts.js';
export * from '../api/groups.js';
export * from '../api/rollouts.js';
export { Vm, VmSpec, VmPatch } from '../mqtt/vm.js';
export { VmDeploy } from '../mqtt/tasks.js';
export { EnrollRequest, EnrollResponse, EnrollStatusRequest, EnrollStatusResponse } from '../mqtt/enrollment.js';
