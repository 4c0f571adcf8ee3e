export { startFleet, deviceDirName, type Fleet, type FleetOptions } from './fleet.js';
// Kept here for the benchmarks and tests that import it from the simulator.
export { createLimiter } from '@pallas/protocol';
