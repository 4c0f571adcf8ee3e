/** Library entry of the CLI: running it in-process (tests) and its config handling. The REST client is @pallas/client. */
export { CliError, ExitCode, UsageError, describeError } from './errors.js';
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
export { formatTable } from './output/table.js';
export { runCli, buildProgram } from './program.js';
export type { Io } from './io.js';
