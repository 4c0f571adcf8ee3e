export * from './api.js';
export * from './agent.js';
export * from './manager.js';
export * from './paths.js';
export * from './process.js';
export * from './temp.js';
export * from './wait.js';
export * from './sockets.js';
