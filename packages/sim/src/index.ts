export { startFleet, deviceDirName, type Fleet, type FleetOptions } from './fleet.js';
export { createLimiter } from './limiter.js';
