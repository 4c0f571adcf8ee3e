/** Library entry: the REST client and helpers, for tests and the benchmarks. */
export { PallasClient, MAX_PAGE, type ClientOptions, type PageQuery } from './client.js';
export { ApiRequestError, CliError, ExitCode, NetworkError, UsageError, describeError } from './errors.js';
export {
  DEFAULT_SERVER,
  configDir,
  configPath,
  loadConfig,
  saveConfig,
  resolveServer,
  resolveToken,
  type SavedConfig,
} from './config.js';
export { parseDuration } from './duration.js';
export { formatTable } from './output/table.js';
export { runCli, buildProgram } from './program.js';
export type { Io } from './io.js';
