import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Type, { type Static } from 'typebox';
import { checker } from '@pallas/protocol';

/**
 * Every manager setting, with its default. Flags (`--http-port`), environment
 * (`PALLAS_HTTP_PORT`) and the config file (`{"httpPort": ...}`) are all derived from
 * this one schema, in that order of precedence.
 */
export const ManagerConfigSchema = Type.Object(
  {
    dataDir: Type.String({ description: 'Where the SQLite database and ports.json live. Default `./pallas-data`.', default: './pallas-data' }),
    config: Type.Optional(Type.String({ description: 'JSON config file to read. Default none.' })),
    production: Type.Boolean({ description: 'Production mode: plain HTTP and plain MQTT are off unless their port is given (docs/security.md). Default off.', default: false }),
    httpPort: Type.Optional(Type.Integer({ description: 'Plain HTTP API (and console) port, for a TLS-terminating proxy; 0 = any free port. Default 8080, off in production mode.', minimum: 0, maximum: 65535 })),
    httpsPort: Type.Integer({ description: 'HTTPS API (and console) port; 0 = any free port. Default 8443.', minimum: 0, maximum: 65535, default: 8443 }),
    httpHost: Type.Optional(Type.String({ description: 'Address the HTTP servers bind. Default: HTTPS on all interfaces, plain HTTP on loopback (127.0.0.1) only.' })),
    mqttPort: Type.Optional(Type.Integer({ description: 'Embedded broker plain MQTT port, for a TLS-terminating proxy; 0 = any free port. Default 1883, off in production mode.', minimum: 0, maximum: 65535 })),
    mqttsPort: Type.Integer({ description: 'Embedded broker MQTT-over-TLS port; 0 = any free port. Default 8883.', minimum: 0, maximum: 65535, default: 8883 }),
    tlsCert: Type.Optional(Type.String({ description: 'PEM server certificate (chain) to use instead of the generated one. Needs tlsKey.' })),
    tlsKey: Type.Optional(Type.String({ description: 'PEM private key of tlsCert.' })),
    tlsCa: Type.Optional(Type.String({ description: 'PEM CA that issued tlsCert, handed to agents to pin. Default with tlsCert: none (agents use their system trust store).' })),
    tlsHostnames: Type.Optional(Type.String({ description: 'Extra comma-separated DNS names/IPs for the generated server certificate. Default: this host\'s name, localhost and its addresses.' })),
    requireApproval: Type.Boolean({ description: 'Newly enrolled devices wait (status pending) until an operator approves them. Default off.', default: false }),
    deviceMessageRate: Type.Integer({ description: 'MQTT messages per second a device may publish (bursts of 10× allowed); beyond it they are dropped (task results excepted). 0 = unlimited. Default 50.', minimum: 0, default: 50 }),
    mqttConnectRate: Type.Integer({ description: 'New MQTT connections per second per remote address (bursts of 10× allowed); beyond it CONNACK 3. 0 = unlimited. Default 20.', minimum: 0, default: 20 }),
    mqttConnectRateLoopback: Type.Boolean({ description: 'Apply mqttConnectRate to loopback addresses too (tests; local fleets of simulated devices are exempt by default). Default off.', default: false }),
    mqttHost: Type.Optional(Type.String({ description: 'Address the embedded broker binds. Default: MQTT over TLS on all interfaces, plain MQTT on loopback (127.0.0.1) only.' })),
    metricsToken: Type.Optional(Type.String({ description: 'When set, GET /metrics needs `Authorization: Bearer <this>` (Prometheus: `authorization: {credentials: …}`). Default none: /metrics is open.', minLength: 16, maxLength: 1024 })),
    mqttPublicUrl: Type.Optional(Type.String({ description: 'MQTT URL handed to devices at enrollment. Default: the host name the device used to reach the HTTP API, with the broker\'s port.' })),
    brokerUrl: Type.Optional(Type.String({ description: 'External MQTT broker shared by several managers, with the managers\' credentials (`mqtts://pallas-manager:pass@broker:8883`); when set no embedded broker starts and devices get their credentials in the broker\'s dynamic-security plugin (docs/scale-out.md). Default none (embedded broker).' })),
    brokerCa: Type.Optional(Type.String({ description: 'PEM file of the CA that signed the external broker\'s certificate. Default: the system\'s CAs.' })),
    brokerShareGroup: Type.String({ description: 'Shared-subscription group of the managers on the external broker (`$share/<group>/…`). Default `pallas`.', default: 'pallas', pattern: '^[^/+#]+$' }),
    databaseUrl: Type.Optional(Type.String({ description: 'Store: `sqlite:<file>` or `postgres://…`. Default `sqlite:<dataDir>/pallas.db`.' })),
    databaseReadUrl: Type.Optional(Type.String({ description: 'Optional read replica (PostgreSQL) for queries; writes always go to databaseUrl.' })),
    adminPassword: Type.Optional(Type.String({ description: 'First admin\'s password, used only when no user exists yet. Default: generated and printed once. At least 12 characters.', minLength: 12 })),
    keepaliveSec: Type.Integer({ description: 'MQTT keepalive handed to devices; offline is detected within 1.5× this. Default 30 s.', minimum: 1, maximum: 3600, default: 30 }),
    statusIntervalSec: Type.Integer({ description: 'How often devices send status. Default 60 s.', minimum: 1, maximum: 86400, default: 60 }),
    unresponsiveAfterReports: Type.Integer({ description: 'A connected device that has sent nothing for this many status intervals (plus a tenth of one, at least 1 s) is shown unresponsive until its next message (docs/manager.md, "Presence"). Default 2.', minimum: 1, maximum: 1000, default: 2 }),
    sessionTtlSec: Type.Integer({ description: 'Lifetime of a login session. Default 12 h.', minimum: 60, default: 43200 }),
    loginMaxFailures: Type.Integer({ description: 'Failed logins of one account within 15 min before it is locked for 30 s, doubling per further failure (max 15 min). Default 5.', minimum: 1, maximum: 1000, default: 5 }),
    loginAddressMaxFailures: Type.Integer({ description: 'The same, per client address (higher: many users may share one address). Default 20.', minimum: 1, maximum: 100000, default: 20 }),
    trustProxy: Type.Optional(Type.String({ description: 'Reverse proxies to believe X-Forwarded-For/-Proto from: comma-separated addresses or CIDRs (e.g. 127.0.0.1,10.0.0.0/8). Default none: the TCP peer is the client.', minLength: 1, maxLength: 4096 })),
    auditRetentionDays: Type.Integer({ description: 'Audit log entries older than this are deleted (checked daily). Default 365.', minimum: 1, maximum: 36500, default: 365 }),
    maxMessageBytes: Type.Integer({ description: 'Largest MQTT payload accepted from a device. Default 256 KiB.', minimum: 1024, default: 262144 }),
    maxBodyBytes: Type.Integer({ description: 'Largest HTTP JSON body. Default 1 MiB.', minimum: 1024, default: 1048576 }),
    bodyTimeoutSec: Type.Integer({ description: 'A request body (all but artifact uploads) must be complete within this long after its headers, else `408 request_timeout` and the connection is closed. Default 30 s.', minimum: 1, maximum: 3600, default: 30 }),
    uploadMinBytes: Type.Integer({ description: 'An artifact upload must send at least this many bytes in each `uploadWindowSec`, else `408 request_timeout` and the connection is closed (0 = no minimum). Default 64 KiB.', minimum: 0, default: 65536 }),
    uploadWindowSec: Type.Integer({ description: 'The window of `uploadMinBytes`. Default 30 s.', minimum: 1, maximum: 3600, default: 30 }),
    artifactsDir: Type.Optional(Type.String({ description: 'Folder of the artifact store (uploaded OVA images, patches, agent versions). Default `<dataDir>/artifacts`.' })),
    maxArtifactBytes: Type.Integer({ description: 'Largest artifact upload. Default 20 GiB.', minimum: 1, default: 21474836480 }),
    downloadUrlTtlSec: Type.Integer({ description: 'How long a device download URL stays valid. Default 24 h.', minimum: 60, maximum: 2592000, default: 86400 }),
    keepHistory: Type.Boolean({ description: 'Keep device and fleet history: resource use and presence per device, devices online, task outcomes and enrollments (docs/history.md). `PALLAS_KEEP_HISTORY=false` turns it off. Default on.', default: true }),
    statusFlushMs: Type.Integer({ description: 'How often buffered device status is written to the store. Default 250 ms.', minimum: 10, maximum: 60000, default: 250 }),
    taskSweepMs: Type.Integer({ description: 'How often task deadlines are checked. Default 1000 ms.', minimum: 10, maximum: 60000, default: 1000 }),
    rolloutTickMs: Type.Integer({ description: 'How often running rollouts are advanced (also at once when a task ends or a device comes online). Default 1000 ms.', minimum: 10, maximum: 60000, default: 1000 }),
    logLevel: Type.String({ description: 'pino level: fatal, error, warn, info, debug, trace, silent. Default info.', default: 'info' }),
    logFormat: Type.String({ description: 'Log lines as `json` (one JSON object a line, for files and log collectors) or `pretty` (readable lines); `auto`: pretty when stdout is a terminal, else JSON. Default auto.', pattern: '^(auto|json|pretty)$', default: 'auto' }),
    demoDevices: Type.Integer({ description: 'Start this many simulated devices beside the manager (demo and Quickstart). Default 0.', minimum: 0, maximum: 100000, default: 0 }),
  },
  { additionalProperties: false },
);
export type ManagerConfig = Static<typeof ManagerConfigSchema>;

type Key = keyof ManagerConfig;
const keys = Object.keys(ManagerConfigSchema.properties) as Key[];
const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (k: string) => `PALLAS_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
const isNumeric = (k: Key) => (ManagerConfigSchema.properties[k] as { type?: string }).type === 'integer';
const isBoolean = (k: Key) => (ManagerConfigSchema.properties[k] as { type?: string }).type === 'boolean';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const configHelp = (): string =>
  keys
    .map((k) => {
      const s = ManagerConfigSchema.properties[k] as { description?: string };
      return `  --${kebab(k).padEnd(20)} ${envName(k).padEnd(28)} ${s.description ?? ''}`;
    })
    .join('\n');

/** Reads flags, environment and config file; returns a validated config with defaults applied. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ManagerConfig {
  const options = Object.fromEntries(keys.map((k) => [kebab(k), { type: isBoolean(k) ? ('boolean' as const) : ('string' as const) }]));
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string>;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const fromFlags: Record<string, string | boolean> = {};
  const fromEnv: Record<string, string> = {};
  for (const k of keys) {
    const f = flags[kebab(k)];
    if (f !== undefined) fromFlags[k] = f;
    const e = env[envName(k)];
    if (e !== undefined && e !== '') fromEnv[k] = e;
  }
  const file = (fromFlags.config as string | undefined) ?? fromEnv.config;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    const unknown = Object.keys(fromFile).filter((k) => !(keys as string[]).includes(k));
    if (unknown.length > 0) throw new ConfigError(`config file ${file}: unknown setting ${unknown.join(', ')}`);
  }
  const merged: Record<string, unknown> = {};
  for (const k of keys) {
    const raw = fromFlags[k] ?? fromEnv[k] ?? fromFile[k] ?? (ManagerConfigSchema.properties[k] as { default?: unknown }).default;
    if (raw === undefined) continue;
    // Only plain decimal integers: "0x50" or "1e3" in a port setting is a typo, not a number.
    merged[k] = isNumeric(k) && typeof raw === 'string' ? (/^-?\d+$/.test(raw.trim()) ? Number(raw) : raw) : raw;
    if (isBoolean(k) && typeof raw === 'string') merged[k] = /^(1|true|yes|on)$/i.test(raw.trim()) ? true : /^(0|false|no|off)$/i.test(raw.trim()) ? false : raw;
  }
  // Plain listeners are for a TLS-terminating proxy: on by default in development so the
  // Quickstart works with plain URLs, off in production unless a port is given explicitly.
  if (merged.httpPort === undefined && merged.production !== true) merged.httpPort = 8080;
  if (merged.mqttPort === undefined && merged.production !== true) merged.mqttPort = 1883;
  const result = checker(ManagerConfigSchema).validate(merged);
  if (!result.ok) throw new ConfigError(`invalid configuration: ${result.error.replace(/^(\w+)/, (m) => `${kebab(m)}`)}`);
  const config = result.value;
  config.dataDir = resolve(config.dataDir);
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) throw new ConfigError('tls-cert and tls-key go together');
  if (config.brokerUrl !== undefined && !/^mqtts?:\/\//.test(config.brokerUrl)) throw new ConfigError('broker-url must be an mqtt:// or mqtts:// URL');
  return config;
}

/** The store URL in effect: an explicit one, else SQLite inside the data dir. */
export function databaseUrlOf(config: ManagerConfig): string {
  return config.databaseUrl ?? `sqlite:${resolve(config.dataDir, 'pallas.db')}`;
}
