import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { assertDriverAvailable } from '../drivers/index.js';
import { describeError } from '../errors.js';
import { AGENT_OPTIONS, LOG_LEVELS, fromEnv, invalid, isLogLevel, type LogLevel } from './flags.js';

export type SupervisorInvocation = { action: 'help' } | { action: 'version' } | { action: 'run'; stateDir: string; logLevel: LogLevel };

/**
 * What `pallas-agent supervise` needs of the agent's configuration: the state dir and the log
 * level, with the agent's precedence (flag > `PALLAS_*` > config file > default; a relative
 * `stateDir` in the file is taken from the file's directory). It refuses what it reads (an
 * unknown flag, an unreadable or non-JSON config file, a bad log level, an unknown driver) with
 * the agent's own messages; the rest of the configuration is checked by the agent at its
 * first start, which exits 2 on a bad one, and the supervisor with it. The full check is not
 * done here because its schemas (TypeBox) would cost the supervisor some 20 MB for as long as
 * it runs (docs/benchmarks.md, "Agent footprint").
 */
export async function loadSupervisorConfig(argv: string[], env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Promise<SupervisorInvocation> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: AGENT_OPTIONS }));
  } catch (err) {
    throw invalid(describeError(err));
  }
  if (values.help) return { action: 'help' };
  if (values.version) return { action: 'version' };
  const configPath = values.config ?? fromEnv(env, 'PALLAS_CONFIG');
  let file: Record<string, unknown> = {};
  if (configPath) {
    const path = resolve(cwd, configPath);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw invalid(`cannot read config file ${path}: ${describeError(err)}`);
    }
    try {
      file = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw invalid(`config file ${path}: (root): the file is not valid JSON`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) throw invalid(`config file ${path}: (root): expected an object`);
    for (const key of ['stateDir', 'logLevel', 'driver'] as const) {
      if (file[key] !== undefined && (typeof file[key] !== 'string' || file[key] === '')) throw invalid(`config file ${path}: ${key}: expected a non-empty string`);
    }
  }
  const fileDir = configPath ? dirname(resolve(cwd, configPath)) : cwd;
  const stateDirFlag = values['state-dir'] ?? fromEnv(env, 'PALLAS_STATE_DIR');
  const fileStateDir = file.stateDir as string | undefined;
  const stateDir = stateDirFlag !== undefined
    ? resolve(cwd, stateDirFlag)
    : fileStateDir !== undefined ? resolve(fileDir, fileStateDir) : resolve(cwd, 'pallas-agent-state');
  const logLevel = values['log-level'] ?? fromEnv(env, 'PALLAS_LOG_LEVEL') ?? (file.logLevel as string | undefined) ?? 'info';
  if (!isLogLevel(logLevel)) throw invalid(`invalid log level "${logLevel}"; valid levels: ${LOG_LEVELS.join(', ')}`);
  assertDriverAvailable(values.driver ?? fromEnv(env, 'PALLAS_DRIVER') ?? (file.driver as string | undefined) ?? 'sim');
  return { action: 'run', stateDir, logLevel };
}
