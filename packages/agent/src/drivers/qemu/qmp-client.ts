import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

/**
 * A small client for the QEMU Machine Protocol over a unix socket: JSON objects, one per line,
 * in both directions. QEMU greets first (`{"QMP": …}`), accepts nothing but
 * `qmp_capabilities` until then, answers commands in order (`{"return": …}` or
 * `{"error": {"class", "desc"}}`, echoing our `id`) and interleaves asynchronous events
 * (`{"event": …}`). No dependencies: the protocol is a few dozen lines.
 */

/** An error answer from QEMU (`class` e.g. `GenericError`, `CommandNotFound`). */
export class QmpCommandError extends Error {
  override readonly name = 'QmpCommandError';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
  }
}

/** The connection failed, closed, timed out or spoke something else than QMP. */
export class QmpConnectionError extends Error {
  override readonly name = 'QmpConnectionError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package?: string };
  capabilities: string[];
}

interface QmpClientEvents {
  event: [QmpEvent];
  /** The socket closed (QEMU exited, or `close()`); `err` when it was not our doing. */
  close: [err: Error | undefined];
}

export interface QmpConnectOptions {
  /** For connecting, the greeting and `qmp_capabilities` together. Default 5000 ms. */
  timeoutMs?: number;
  /** Default timeout of each `execute`. Default 10,000 ms. */
  commandTimeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
/** A line this long is not QMP; stop buffering rather than grow without bound. */
const MAX_LINE = 16 * 1024 * 1024;

export class QmpClient extends EventEmitter<QmpClientEvents> {
  readonly #socket: Socket;
  readonly #path: string;
  readonly #commandTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #buffer = '';
  #closed = false;
  #onGreeting: ((greeting: unknown) => void) | undefined;

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(path: string, options: QmpConnectOptions = {}): Promise<{ client: QmpClient; greeting: QmpGreeting }> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const socket = createConnection(path);
    const client = new QmpClient(socket, path, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QmpConnectionError(`QMP socket ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const greeting = await Promise.race([client.#greeting(), deadline]);
      await Promise.race([client.execute('qmp_capabilities'), deadline]);
      return { client, greeting };
    } catch (err) {
      client.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private constructor(socket: Socket, path: string, commandTimeoutMs: number) {
    super();
    this.#socket = socket;
    this.#path = path;
    this.#commandTimeoutMs = commandTimeoutMs;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('error', (err) => this.#shutdown(new QmpConnectionError(`QMP socket ${path}: ${err.message}`, { cause: err })));
    socket.on('close', () => this.#shutdown(new QmpConnectionError(`QMP socket ${path} closed by QEMU`)));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs one command and resolves with its `return` value; rejects with `QmpCommandError`
   * when QEMU answers with an error, `QmpConnectionError` on timeout or a closed socket.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new QmpConnectionError(`QMP socket ${this.#path} is closed; cannot run ${command}`));
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? this.#commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new QmpConnectionError(`QMP ${command} on ${this.#path}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.#socket.write(`${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`);
    });
  }

  /** Closes the connection; commands still waiting reject. Idempotent. */
  close(): void {
    this.#shutdown(undefined);
    this.#socket.destroy();
  }

  #greeting(): Promise<QmpGreeting> {
    return new Promise((resolve, reject) => {
      const onClose = (err: Error | undefined): void => reject(err ?? new QmpConnectionError(`QMP socket ${this.#path} closed before the greeting`));
      this.once('close', onClose);
      this.#onGreeting = (msg) => {
        this.off('close', onClose);
        const qmp = (msg as { QMP?: QmpGreeting }).QMP;
        if (qmp && typeof qmp === 'object') resolve(qmp);
        else reject(new QmpConnectionError(`QMP socket ${this.#path}: expected a QMP greeting, got ${JSON.stringify(msg).slice(0, 200)}`));
      };
    });
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    if (this.#buffer.length > MAX_LINE) {
      this.#socket.destroy(new Error(`line longer than ${MAX_LINE} bytes`));
      return;
    }
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).trim();
      this.#buffer = this.#buffer.slice(nl + 1);
      if (line === '') continue;
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch (err) {
        this.#socket.destroy(new Error(`not JSON: ${line.slice(0, 200)}`, { cause: err }));
        return;
      }
      this.#dispatch(msg);
    }
  }

  #dispatch(msg: unknown): void {
    if (typeof msg !== 'object' || msg === null) return;
    if (this.#onGreeting) {
      const onGreeting = this.#onGreeting;
      this.#onGreeting = undefined;
      onGreeting(msg);
      return;
    }
    if ('event' in msg) {
      this.emit('event', msg as QmpEvent);
      return;
    }
    // QEMU echoes our id; an answer without one (a parse error on its side) belongs to the
    // oldest command, since it answers in order.
    const id = 'id' in msg && typeof msg.id === 'number' ? msg.id : this.#pending.keys().next().value;
    if (id === undefined) return;
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if ('error' in msg) {
      const e = msg.error as { class?: unknown; desc?: unknown };
      pending.reject(new QmpCommandError(pending.command, String(e?.class ?? 'GenericError'), String(e?.desc ?? 'unknown error')));
    } else {
      pending.resolve((msg as { return?: unknown }).return);
    }
  }

  #shutdown(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    const reason = err ?? new QmpConnectionError(`QMP socket ${this.#path} was closed`);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new QmpConnectionError(`QMP ${p.command} on ${this.#path}: ${reason.message}`, { cause: reason }));
    }
    this.#pending.clear();
    this.emit('close', err);
  }
}
