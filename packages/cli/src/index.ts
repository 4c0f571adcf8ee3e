/** Library entry: the REST client and helpers, for tests and the benchmarks. */
export { PallasClient, MAX_PAGE, type ClientOptions, type EventQuery, type PageQuery, type StreamedEvent } from './client.js';
export { EventStream, type EventStreamOptions } from './event-stream.js';
export { SseParser, type SseMessage } from './sse.js';
export { watchTask, isFinal, type WatchOptions } from './watch.js';
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
