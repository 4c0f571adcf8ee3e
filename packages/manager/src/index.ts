export { startManager, type RunningManager } from './app.js';
export { loadConfig, ManagerConfigSchema, type ManagerConfig } from './config/config.js';
