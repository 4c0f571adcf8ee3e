/**
 * The agent's config file, as a TypeBox schema: the source of the file's checker
 * (`src/checks/generated.ts`, made from it at build time), never imported by the running agent
 * itself (only to explain a refused file, and by the generator and tests): see `src/checks/`.
 */
import Type, { type Static, type TSchema } from 'typebox';
import { DRIVER_ERROR_CODES } from '../drivers/driver-error.js';
import { LOG_LEVELS } from './flags.js';

export const LogLevelSchema = Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)));

/** One simulated operation's duration: up to 10 minutes. */
const LatencyMs = Type.Integer({ minimum: 0, maximum: 600_000 });
const DriverErrorCodeSchema = Type.Union(DRIVER_ERROR_CODES.map((c) => Type.Literal(c)));
function perSimOperation<S extends TSchema>(schema: S) {
  return { createVm: Type.Optional(schema), powerVm: Type.Optional(schema), updateVm: Type.Optional(schema), deleteVm: Type.Optional(schema), applyPatch: Type.Optional(schema) };
}

export const SimOptionsSchema = Type.Object(
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

export const QemuOptionsSchema = Type.Object(
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

/** How the esxi driver reaches its host. The password is either clear or `enc:v1:…` (encrypt-secret). */
export const EsxiOptionsSchema = Type.Object(
  {
    /** `https://esxi.example` (the SDK path `/sdk` is added when missing). */
    url: Type.Optional(Type.String({ minLength: 1 })),
    user: Type.Optional(Type.String({ minLength: 1 })),
    password: Type.Optional(Type.String({ minLength: 1 })),
    /** `pallas-agent encrypt-secret` output; the key is kept apart (key file or PALLAS_SECRET_KEY). */
    passwordEncrypted: Type.Optional(Type.String({ minLength: 1 })),
    /** SHA-256 fingerprint of the host's certificate, hex, colons allowed. */
    thumbprint: Type.Optional(Type.String({ minLength: 1 })),
    /** Path of a PEM file (the CA, or the host's self-signed certificate), relative to the config file; or the PEM text itself. */
    ca: Type.Optional(Type.String({ minLength: 1 })),
    /** No certificate check at all: labs only. */
    insecure: Type.Optional(Type.Boolean()),
    callTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
    shutdownTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
);

/** Artifact downloads (docs/agent.md). */
export const DownloadsSchema = Type.Object(
  {
    /** Bandwidth cap of artifact downloads, bytes per second. Default: none. */
    maxBytesPerSec: Type.Optional(Type.Integer({ minimum: 1024 })),
  },
  { additionalProperties: false },
);
export type DownloadsConfig = Static<typeof DownloadsSchema>;

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
    downloads: Type.Optional(DownloadsSchema),
    /** At most one progress message per running task this often (docs/agent.md). Default 1,000. */
    progressIntervalMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  },
  { additionalProperties: false },
);
export type AgentConfigFile = Static<typeof AgentConfigFile>;
export type SimOptions = Static<typeof SimOptionsSchema>;
export type EsxiFileOptions = Static<typeof EsxiOptionsSchema>;
