/**
 * The agent's checks of what it reads and sends: the manager's messages, its HTTP answers, the
 * state dir's files, the config file, the drivers' inputs. Each is the check TypeBox compiles
 * the schema to, generated at build time into plain JavaScript (`generated.ts`, from the
 * schemas listed in `schemas.ts`, the protocol's among them): checking loads no schema
 * library, which is most of what an idle agent would otherwise hold (docs/benchmarks.md,
 * "Agent footprint"). Only explaining a refusal loads TypeBox and the schemas, to word the
 * first problem exactly as the manager's checker would.
 */
import type {
  ApiError,
  ControlMessage,
  EnrollResponse,
  EnrollStatusResponse,
  PowerAction,
  StatusMessage,
  TaskAck,
  TaskCommand,
  Vm,
  VmPatch,
  VmSpec,
} from '@pallas/protocol';
import type { AgentConfigFile } from '../config/config-schema.js';
import type { DeviceIdentity, RetiredMarker } from '../identity/state-schemas.js';
import type { JournalRecord } from '../tasks/journal-schema.js';
import * as generated from './generated.js';
import type { SchemaName } from './schemas.js';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

export interface DeviceCheck<T> {
  readonly schema: SchemaName;
  /** Whether the value matches the schema (plain JavaScript, synchronous). */
  check(value: unknown): value is T;
  /** The first problem, as "path: message" (the protocol's wording); loads TypeBox, so only for a refusal. */
  explain(value: unknown): Promise<string>;
  /** The value if it matches, else the first problem. */
  validate(value: unknown): Promise<ParseResult<T>>;
  /** Decodes JSON text or bytes, then validates. */
  parseJson(raw: string | Uint8Array): Promise<ParseResult<T>>;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** JSON text or bytes to a value; `undefined` (which no schema here accepts) if it is not UTF-8 JSON. */
export function decodeJson(raw: string | Uint8Array): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(typeof raw === 'string' ? raw : decoder.decode(raw)) as unknown };
  } catch {
    return { ok: false, error: 'payload is not valid UTF-8 JSON' };
  }
}

let explainers: Promise<(schema: SchemaName, value: unknown) => string> | undefined;

/** The protocol's own checker (TypeBox) of one schema, loaded at the first refusal. */
function explainer(): Promise<(schema: SchemaName, value: unknown) => string> {
  explainers ??= Promise.all([import('@pallas/protocol'), import('./schemas.js')]).then(([{ checker }, { SCHEMAS }]) => {
    const made = new Map<SchemaName, ReturnType<typeof checker>>();
    return (schema, value) => {
      let c = made.get(schema);
      if (!c) made.set(schema, (c = checker(SCHEMAS[schema])));
      return c.explain(value);
    };
  });
  return explainers;
}

function deviceCheck<T>(schema: SchemaName): DeviceCheck<T> {
  const check = generated[schema] as (value: unknown) => boolean;
  const explain = async (value: unknown): Promise<string> => (await explainer())(schema, value);
  const validate = async (value: unknown): Promise<ParseResult<T>> =>
    check(value) ? { ok: true, value: value as T } : { ok: false, error: await explain(value) };
  return {
    schema,
    check: (value: unknown): value is T => check(value),
    explain,
    validate,
    async parseJson(raw) {
      const decoded = decodeJson(raw);
      return decoded.ok ? validate(decoded.value) : decoded;
    },
  };
}

export const checkControlMessage = deviceCheck<ControlMessage>('ControlMessage');
export const checkTaskCommand = deviceCheck<TaskCommand>('TaskCommand');
export const checkTaskAck = deviceCheck<TaskAck>('TaskAck');
export const checkEnrollResponse = deviceCheck<EnrollResponse>('EnrollResponse');
export const checkEnrollStatusResponse = deviceCheck<EnrollStatusResponse>('EnrollStatusResponse');
export const checkApiError = deviceCheck<ApiError>('ApiError');
export const checkStatusMessage = deviceCheck<StatusMessage>('StatusMessage');
export const checkVmSpec = deviceCheck<VmSpec>('VmSpec');
export const checkVmPatch = deviceCheck<VmPatch>('VmPatch');
export const checkPowerAction = deviceCheck<PowerAction>('PowerAction');
export const checkVm = deviceCheck<Vm>('Vm');
export const checkAgentConfigFile = deviceCheck<AgentConfigFile>('AgentConfigFile');
export const checkDeviceIdentity = deviceCheck<DeviceIdentity>('DeviceIdentity');
export const checkRetiredMarker = deviceCheck<RetiredMarker>('RetiredMarker');
export const checkJournalRecord = deviceCheck<JournalRecord>('JournalRecord');
