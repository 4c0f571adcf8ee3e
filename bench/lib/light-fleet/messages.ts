/** The IPC messages between light-fleet.ts (parent) and worker.ts (one per process). */
import type { DeviceCredential } from './light-device.js';

export type WorkerRequest =
  | { op: 'setup'; host: string; port: number; keepaliveSec: number; statusTemplate: { head: string; tail: string } }
  | { op: 'add'; creds: DeviceCredential[]; localAddresses: string[]; timeoutMs: number }
  | { op: 'drop' }
  | { op: 'reconnect'; timeoutMs: number; spreadMs: number }
  | { op: 'status'; rate: number; seconds: number }
  | { op: 'tasks' }
  | { op: 'memory' }
  | { op: 'close' };

export interface ConnectReply { op: 'add' | 'reconnect'; onlineMs: number[]; lost: string[]; retries: number; online: number }
/** `sendSeconds`: how long offering took; above the asked seconds, the sender could not keep the rate. */
export interface StatusReply { op: 'status'; offered: number; acked: number; sendSeconds: number }
export interface TasksReply { op: 'tasks'; ackAt: number[]; unacked: number }
export interface MemoryReply { op: 'memory'; rssBytes: number; devices: number }

export type WorkerReply =
  | { op: 'ready' | 'setup' | 'drop' | 'close' }
  | ConnectReply
  | StatusReply
  | TasksReply
  | MemoryReply
  | { op: 'error'; message: string };
