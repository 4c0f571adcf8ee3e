/**
 * Every schema the agent checks a value against, by name: the protocol's (the one source of
 * the messages' schemas) and the agent's own files. The running agent never imports this
 * module for a check: `generate.ts` turns each schema into plain JavaScript at build time
 * (`generated.ts`), and this module (with TypeBox) is loaded only to explain a refusal, by the
 * generator and by the tests that prove the generated checks agree with TypeBox's.
 */
import { ApiError, ControlMessage, EnrollResponse, EnrollStatusResponse, PowerAction, StatusMessage, TaskAck, TaskCommand, Vm, VmPatch, VmSpec } from '@pallas/protocol';
import { AgentConfigFile } from '../config/config-schema.js';
import { DeviceIdentity, RetiredMarker } from '../identity/state-schemas.js';
import { JournalRecord } from '../tasks/journal-schema.js';

export const SCHEMAS = {
  // What the manager sends on cmd/# (link.ts).
  ControlMessage,
  TaskCommand,
  TaskAck,
  // What the manager answers over HTTP (enrollment), and the credential kept from it.
  EnrollResponse,
  EnrollStatusResponse,
  ApiError,
  // What the agent sends (checked before it goes: a mismatch is a bug to catch here).
  StatusMessage,
  // What the drivers are asked to do, and the sim host's state file.
  VmSpec,
  VmPatch,
  PowerAction,
  Vm,
  // The agent's own files.
  AgentConfigFile,
  DeviceIdentity,
  RetiredMarker,
  JournalRecord,
} as const;

export type SchemaName = keyof typeof SCHEMAS;
