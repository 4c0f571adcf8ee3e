import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checker } from '@pallas/protocol';
import Type, { type Static, type TSchema } from 'typebox';
import { DRIVER_ERROR_CODES, assertDriverAvailable, type DriverName, type QemuDriverOptions } from '../drivers/index.js';
import { AgentError, AgentErrorCodes, describeError, isAgentError } from '../errors.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const LogLevelSchema = Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)));

/** One simulated operation's duration: up to 10 minutes. */
const LatencyMs = Type.Integer({ minimum: 0, maximum: 600_000 });
const DriverErrorCodeSchema = Type.Union(DRIVER_ERROR_CODES.map((c) => Type.Literal(c)));
function perSimOperation<S extends TSchema>(schema: S) {
  return { createVm: Type.Optional(schema), powerVm: Type.Optional(schema), updateVm: Type.Optional(schema), deleteVm: Type.Optional(schema) };
}

const SimOptionsSchema = Type.Object(
  {
    hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    cpuCores: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    memoryMB: Type.Optional(Type.Integer({ minimum: 1 })),
    datastores: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 255 }),
            capacityGB: Type.Number({ minimum: 0 }),
            freeGB: Type.Optional(Type.Number({ minimum: 0 })),
          },
          { additionalProperties: false },
        ),
        { maxItems: 256 },
      ),
    ),
    vmCount: Type.Optional(Type.Integer({ minimum: 0, maximum: 4096 })),
    seed: Type.Optional(Type.Integer()),
    latencyMs: Type.Optional(Type.Union([LatencyMs, Type.Object(perSimOperation(LatencyMs), { additionalProperties: false })])),
    failRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    failOn: Type.Optional(Type.Object(perSimOperation(DriverErrorCodeSchema), { additionalProperties: false })),
  },
  { additionalProperties: false },
);

const QemuOptionsSchema = Type.Object(
  {
    /** Relative paths are taken from the config file's directory. Default `<stateDir>/qemu`. */
    dir: Type.Optional(Type.String({ minLength: 1 })),
    binary: Type.Optional(Type.String({ minLength: 1 })),
    qemuImg: Type.Optional(Type.String({ minLength: 1 })),
    accel: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('kvm'), Type.Literal('tcg')])),
    shutdownTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
    qmpTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
  },
  { additionalProperties: false },
);

/**
 * The esxi driver's section. The agent-config work (env vars PALLAS_ESXI_*, the
 * encrypted password) builds on this; here it is passed to the driver as is.
 */
const EsxiOptionsSchema = Type.Object(
  {
    url: Type.String({ minLength: 1 }),
    user: Type.String({ minLength: 1 }),
    password: Type.String({ minLength: 1 }),
    thumbprint: Type.Optional(Type.String({ minLength: 1 })),
    /** PEM text or the path of a PEM file (relative: from the config file's directory). */
    ca: Type.Optional(Type.String({ minLength: 1 })),
    insecure: Type.Optional(Type.Boolean()),
    callTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
    shutdownTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);
export type EsxiConfig = Static<typeof EsxiOptionsSchema>;

/** The config file (`--config file.json`): the flags' names in camelCase, plus driver options. */
export const AgentConfigFile = Type.Object(
  {
    manager: Type.Optional(Type.String()),
    token: Type.Optional(Type.String()),
    ca: Type.Optional(Type.String({ minLength: 1 })),
    /** Relative paths are taken from the config file's directory. */
    stateDir: Type.Optional(Type.String({ minLength: 1 })),
    driver: Type.Optional(Type.String()),
    logLevel: Type.Optional(LogLevelSchema),
    sim: Type.Optional(SimOptionsSchema),
    qemu: Type.Optional(QemuOptionsSchema),
    esxi: Type.Optional(EsxiOptionsSchema),
  },
  { additionalProperties: false },
);
export type AgentConfigFile = Static<typeof AgentConfigFile>;
const checkFile = checker(AgentConfigFile);
const checkLevel = checker(LogLevelSchema);

export interface AgentConfig {
  manager: string | undefined;
  token: string | undefined;
  /** PEM file of the manager's CA: the only CA trusted for HTTPS enrollment (and MQTTS if the manager sends none). */
  ca?: string;
  /** `--re-enroll`: enroll afresh (same device id), even a retired device. Default false. */
  reEnroll: boolean;
  /** Absolute. Default `./pallas-agent-state`. */
  stateDir: string;
  /** Default `sim`. */
  driver: DriverName;
  /** Default `info`. */
  logLevel: LogLevel;
  /** Options of the sim driver (config file only). */
  sim: Static<typeof SimOptionsSchema>;
  /** Options of the qemu driver (config file), `dir` absolute: `--qemu-dir` > `PALLAS_QEMU_DIR` > file > `<stateDir>/qemu`. */
  qemu: QemuDriverOptions;
  /** Options of the esxi driver (config file); required when `driver` is `esxi`. */
  esxi?: EsxiConfig;
}

export type Invocation = { action: 'help' } | { action: 'version' } | { action: 'run'; config: AgentConfig };

export const USAGE = `Usage: pallas-agent [options]

Runs the Pallas device agent: enrolls with the manager once, then keeps an MQTT link to it.

Options (flags override PALLAS_* environment variables, which override the config file):
  --manager <url>      manager base URL, http(s)                      [PALLAS_MANAGER]
  --token <token>      enrollment token (first start only)            [PALLAS_TOKEN]
  --ca <file>          pin the manager's CA (PEM) from the first call  [PALLAS_CA]
  --re-enroll          enroll afresh with --token, same device id (flag only)
                       (after a decommission or a refused credential)
  --state-dir <dir>    identity and credential (./pallas-agent-state) [PALLAS_STATE_DIR]
  --driver <name>      hypervisor driver: sim|qemu|esxi (sim)         [PALLAS_DRIVER]
  --qemu-dir <dir>     qemu driver: VM folders (<state-dir>/qemu)     [PALLAS_QEMU_DIR]
  --config <file>      JSON config file                               [PALLAS_CONFIG]
  --log-level <level>  fatal|error|warn|info|debug|trace|silent (info) [PALLAS_LOG_LEVEL]
  --help               show this help
  --version            show the version
`;

function invalid(message: string): AgentError {
  return new AgentError(AgentErrorCodes.CONFIG_INVALID, message);
}

/** Empty environment variables count as unset. */
function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/**
 * Resolves the agent's configuration: flags > environment > config file > defaults.
 * Every problem is an AgentError `config_invalid` (or a driver error) with a one-line message.
 */
export async function loadConfig(argv: string[], env: NodeJS.ProcessEnv, cwd: string = process.cwd()): Promise<Invocation> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        manager: { type: 'string' },
        token: { type: 'string' },
        ca: { type: 'string' },
        're-enroll': { type: 'boolean' },
        'state-dir': { type: 'string' },
        driver: { type: 'string' },
        'qemu-dir': { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (err) {
    throw invalid(describeError(err));
  }
  if (values.help) return { action: 'help' };
  if (values.version) return { action: 'version' };

  const configPath = values.config ?? fromEnv(env, 'PALLAS_CONFIG');
  const file = configPath ? await readConfigFile(resolve(cwd, configPath)) : {};
  const fileDir = configPath ? dirname(resolve(cwd, configPath)) : cwd;

  const manager = values.manager ?? fromEnv(env, 'PALLAS_MANAGER') ?? file.manager;
  const token = values.token ?? fromEnv(env, 'PALLAS_TOKEN') ?? file.token;
  const caFlag = values.ca ?? fromEnv(env, 'PALLAS_CA');
  const ca = caFlag !== undefined ? resolve(cwd, caFlag) : file.ca !== undefined ? resolve(fileDir, file.ca) : undefined;
  // Flag only: left in a config file or a service's environment it would re-enroll at every
  // start and bring a decommissioned device back by itself.
  const reEnroll = values['re-enroll'] ?? false;
  const stateDirFlag = values['state-dir'] ?? fromEnv(env, 'PALLAS_STATE_DIR');
  const stateDir = stateDirFlag !== undefined
    ? resolve(cwd, stateDirFlag)
    : file.stateDir !== undefined
      ? resolve(fileDir, file.stateDir)
      : resolve(cwd, 'pallas-agent-state');
  const qemuDirFlag = values['qemu-dir'] ?? fromEnv(env, 'PALLAS_QEMU_DIR');
  const qemuDir = qemuDirFlag !== undefined
    ? resolve(cwd, qemuDirFlag)
    : file.qemu?.dir !== undefined
      ? resolve(fileDir, file.qemu.dir)
      : join(stateDir, 'qemu');
  const driver = values.driver ?? fromEnv(env, 'PALLAS_DRIVER') ?? file.driver ?? 'sim';
  const logLevel = values['log-level'] ?? fromEnv(env, 'PALLAS_LOG_LEVEL') ?? file.logLevel ?? 'info';

  if (manager !== undefined) checkManagerUrl(manager);
  if (!checkLevel.check(logLevel)) throw invalid(`invalid log level "${logLevel}"; valid levels: ${LOG_LEVELS.join(', ')}`);
  assertDriverAvailable(driver);
  let esxi = file.esxi;
  if (driver === 'esxi' && esxi === undefined) throw invalid('driver "esxi" needs an "esxi" section in the config file: {"url", "user", "password", "thumbprint"}');
  if (esxi?.ca !== undefined && !esxi.ca.includes('-----BEGIN')) esxi = { ...esxi, ca: resolve(fileDir, esxi.ca) };
  return { action: 'run', config: { manager, token, ...(ca !== undefined ? { ca } : {}), reEnroll, stateDir, driver, logLevel, sim: file.sim ?? {}, qemu: { ...file.qemu, dir: qemuDir }, ...(esxi !== undefined ? { esxi } : {}) } };
}

function checkManagerUrl(manager: string): void {
  let url: URL;
  try {
    url = new URL(manager);
  } catch {
    throw invalid(`manager URL "${manager}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`manager URL must be http:// or https://, got "${manager}"`);
}

async function readConfigFile(path: string): Promise<AgentConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw invalid(`cannot read config file ${path}: ${describeError(err)}`);
  }
  const res = checkFile.parseJson(text);
  // typebox reports a key outside the schema as "schema is false"; say what it means.
  if (!res.ok) throw invalid(`config file ${path}: ${res.error.replace(/: schema is false$/, ': unknown setting')}`);
  return res.value;
}

/** True for the errors that mean "fix your configuration" (exit status 2). */
export function isConfigError(err: unknown): boolean {
  return (
    isAgentError(err, AgentErrorCodes.CONFIG_INVALID) ||
    isAgentError(err, AgentErrorCodes.DRIVER_UNKNOWN) ||
    isAgentError(err, AgentErrorCodes.DRIVER_NOT_AVAILABLE) ||
    isAgentError(err, AgentErrorCodes.ENROLLMENT_NOT_CONFIGURED)
  );
}
