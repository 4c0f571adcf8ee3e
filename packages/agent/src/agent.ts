import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlMessage, EnrollResponse, HostFacts, TaskResult } from '@pallas/protocol';
import type { Driver } from './drivers/driver.js';
import { isDriverError } from './drivers/driver-error.js';
import { Downloader } from './downloads/downloader.js';
import { enroll } from './enrollment/enroll.js';
import { checkRefusedCredential } from './enrollment/credential-check.js';
import { AgentError, AgentErrorCodes, describeError } from './errors.js';
import { StateDir, type DeviceIdentity } from './identity/state-dir.js';
import { Link, type Login } from './link/link.js';
import { StatusReporter } from './status/status-reporter.js';
import type { AgentUpdater } from './update/self-updater.js';
import { AGENT_VERSION } from './version.js';
import { TaskJournal } from './tasks/journal.js';
import { TaskRunner } from './tasks/task-runner.js';
import { Backoff, type BackoffOptions } from './util/backoff.js';
import { silentLogger, type Logger } from './util/line-logger.js';

export interface AgentOptions {
  /** Directory holding device.json, credential.json and retired.json; created (0700) if missing. */
  stateDir: string;
  /** The hypervisor driver. The agent owns it from now on and closes it when it stops. */
  driver: Driver;
  /** Manager base URL (http or https). Needed only while the device has no credential. */
  manager?: string;
  /** Enrollment token. Needed only while the device has no credential, and with `reEnroll`. */
  token?: string;
  /** PEM of the manager's CA, pinned from the first call (`--ca`); the enrollment response's CA replaces it for MQTT. */
  ca?: string;
  /**
   * An operator's explicit ask to enroll again: discard the stored credential and the retired
   * marker and enroll afresh with `token`, keeping the device id. Without it a retired device
   * (decommissioned, or its credential refused) refuses to start.
   */
  reEnroll?: boolean;
  /** Default: a silent logger. The agent logs through children tagged with its device id. */
  logger?: Logger;
  /** Overrides the status interval the manager hands out at enrollment (tests, simulator). */
  statusIntervalSec?: number;
  /** MQTT reconnect delays. Default base 1 s, cap 60 s, full jitter. */
  linkBackoff?: BackoffOptions;
  /** Enrollment retry delays. Default base 1 s, cap 30 s, full jitter. */
  enrollBackoff?: BackoffOptions;
  /** Connection age after which a drop resets the reconnect backoff. Default 10 s. */
  stableAfterMs?: number;
  /** Wraps each enrollment HTTP request, e.g. a semaphore shared by many agents. */
  enrollGate?: <T>(attempt: () => Promise<T>) => Promise<T>;
  /** While online, re-send task results the manager has not acknowledged this often. Default 30 s. */
  taskResendIntervalMs?: number;
  /** At most one progress message per running task this often. Default 1 s (tasks/task-runner.ts). */
  progressIntervalMs?: number;
  /**
   * Runs `agent.update` tasks and commits an update once this agent is healthy (online, a
   * status report delivered): `SelfUpdater`, given by `pallas-agent` under the supervisor.
   * Default none: `agent.update` fails `unsupported`.
   */
  updater?: AgentUpdater;
  /** Artifact downloads: bandwidth cap, retry delays (docs/agent.md). */
  downloads?: { maxBytesPerSec?: number; backoff?: BackoffOptions };
}

export type AgentState =
  | 'idle'
  | 'enrolling'
  | 'connecting'
  | 'online'
  | 'offline'
  | 'stopped'
  | 'decommissioned'
  | 'failed';

export interface AgentEvents {
  /** The manager issued a credential (first enrollment, or a re-enrollment the operator asked for). */
  enrolled: [info: { deviceId: string }];
  /** MQTT link up, presence `online` sent. */
  online: [];
  /** MQTT link down; the agent keeps reconnecting unless it is stopping. */
  offline: [reason: string];
  /** The manager decommissioned the device: marked retired, credential deleted, agent stopped. */
  decommissioned: [reason: string | undefined];
  /**
   * The broker refused the credential (the device was decommissioned or its credential
   * revoked): marked retired, agent stopped. The agent never re-enrolls by itself.
   */
  'credential-rejected': [error: AgentError];
  /** Any other fatal error after start() resolved (e.g. enrollment refused): agent stopped. */
  error: [error: Error];
  /** A task started on the driver (journaled, first progress sent). */
  'task-started': [taskId: string];
  /** A task ended: its result is journaled and being published. */
  'task-finished': [result: TaskResult];
}

const TERMINAL: ReadonlySet<AgentState> = new Set(['stopped', 'decommissioned', 'failed']);

/**
 * One device agent: identity → task journal → enrollment → MQTT link → status reports and
 * tasks, plus the other commands the manager sends. No process-global state and no
 * process.exit, so a simulator can run thousands in one process; the `pallas-agent` program
 * maps its events to exit codes.
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly #opts: Readonly<AgentOptions>;
  readonly #stateDir: StateDir;
  readonly #abort = new AbortController();
  #log: Logger;
  #state: AgentState = 'idle';
  #identity: DeviceIdentity | undefined;
  #credential: EnrollResponse | undefined;
  /** The credential read from the state dir at start: tasks resumed before the link is up download with its pinned key. */
  #stored: EnrollResponse | undefined;
  /** A rotated login found on disk at start: tried first, the stored one is the fallback. */
  #resumedLogin: { password: string; username?: string } | undefined;
  #link: Link | undefined;
  #reporter: StatusReporter | undefined;
  #journal: TaskJournal | undefined;
  #tasks: TaskRunner | undefined;
  #startedAt = Date.now();
  #shutdown: Promise<void> | undefined;

  constructor(options: AgentOptions) {
    super();
    this.#opts = Object.freeze({ ...options });
    this.#stateDir = new StateDir(options.stateDir);
    this.#log = options.logger ?? silentLogger;
  }

  get state(): AgentState {
    return this.#state;
  }

  /** Known once start() has read or created the state dir. */
  get deviceId(): string | undefined {
    return this.#identity?.deviceId;
  }

  /** True while the agent holds a credential. */
  get enrolled(): boolean {
    return this.#credential !== undefined;
  }

  get online(): boolean {
    return this.#state === 'online';
  }

  /**
   * Loads (or creates) the identity, opens the task journal (resuming tasks a crash
   * interrupted), then connects with the stored credential, or enrolls first. Resolves once the first enrollment attempt is done and the MQTT connection is
   * under way; if the manager is unreachable it resolves anyway and keeps retrying in the
   * background. Rejects on what retrying cannot fix: a bad state dir, a retired device
   * (without `reEnroll`), nothing to enroll with, an enrollment the manager refuses at the
   * first attempt.
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error(`agent cannot start from state ${this.#state}`);
    this.#startedAt = Date.now();
    this.#state = 'connecting';
    let secret: string | undefined;
    let credential: EnrollResponse | null = null;
    try {
      this.#identity = await this.#stateDir.loadOrCreateIdentity();
      const { deviceId } = this.#identity;
      this.#log = this.#log.child({ device: deviceId });
      if (this.#opts.reEnroll) {
        this.#requireEnrollmentConfig();
        secret = await this.#prepareReEnrollment();
      } else {
        const retired = await this.#stateDir.readRetired();
        if (retired) {
          throw new AgentError(
            AgentErrorCodes.DEVICE_RETIRED,
            `device ${deviceId} was retired on ${retired.at} (${retired.reason}); to enroll it again run pallas-agent with --re-enroll --token <new token>`,
          );
        }
        credential = await this.#stateDir.readCredential(deviceId);
        this.#stored = credential ?? undefined;
        if (!credential) this.#requireEnrollmentConfig();
        else this.#resumedLogin = await this.#stateDir.readNextPassword();
      }
      await this.#startTasks();
    } catch (err) {
      await this.#close('failed');
      throw err;
    }
    if (credential) {
      this.#connect(credential);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      let started = false;
      const firstFailure = (): void => {
        if (started) return;
        started = true;
        resolve();
      };
      this.#enrollAndConnect(secret, firstFailure).then(firstFailure, async (err: unknown) => {
        if (TERMINAL.has(this.#state)) return firstFailure(); // stopped meanwhile
        if (!started) {
          started = true;
          await this.#close('failed');
          return reject(err);
        }
        await this.#fail(err);
      });
    });
  }

  /** Says `offline`, disconnects, stops every timer and closes the driver. Idempotent. */
  async stop(): Promise<void> {
    await this.#close('stopped', { reason: 'agent stopped' });
  }

  #requireEnrollmentConfig(): void {
    const { manager, token } = this.#opts;
    if (!manager || !token) {
      throw new AgentError(
        AgentErrorCodes.ENROLLMENT_NOT_CONFIGURED,
        `device ${this.#identity!.deviceId} is not enrolled; give a manager URL and an enrollment token`,
      );
    }
  }

  /**
   * The operator asked for a fresh enrollment. The stored credential and the retired marker
   * are discarded only once the new credential is stored (#enrollAndConnect), so a refused
   * enrollment (bad token) leaves the device as it was: still retired, or still enrolled.
   * Returns the stored secret, if any: a manager that still knows the device re-keys it only
   * on proof of its current secret; one that deleted it ignores the secret.
   */
  async #prepareReEnrollment(): Promise<string | undefined> {
    const deviceId = this.#identity!.deviceId;
    const [retired, credential] = await Promise.all([
      this.#stateDir.readRetired().catch((err: unknown) => {
        this.#log.warn({ err: describeError(err) }, 'ignoring an unreadable retired marker: re-enrolling replaces it');
        return null;
      }),
      this.#stateDir.readCredential(deviceId).catch((err: unknown) => {
        this.#log.warn({ err: describeError(err) }, 'ignoring an unreadable credential: re-enrolling replaces it');
        return null;
      }),
    ]);
    this.#log.warn(
      { retiredAt: retired?.at, retiredReason: retired?.reason, hadCredential: credential !== null },
      're-enrolling on request: the stored credential will be replaced',
    );
    return credential?.mqtt.password;
  }

  async #enrollAndConnect(secret: string | undefined, onRetry?: () => void): Promise<void> {
    const { manager, token } = this.#opts;
    const deviceId = this.#identity!.deviceId;
    this.#state = 'enrolling';
    const facts = await this.#hostFactsOnceReachable(onRetry);
    // Without a credential to prove who it is, the device proves with its enrollment key that
    // a retry (the first answer lost, or the agent restarted) is its own (docs/security.md).
    const proof = secret ?? await this.#stateDir.enrollmentKey();
    const credential = await enroll({
      manager: manager!,
      request: { token: token!, deviceId, facts, secret: proof },
      logger: this.#log,
      backoff: this.#opts.enrollBackoff,
      signal: this.#abort.signal,
      gate: this.#opts.enrollGate,
      ...(this.#opts.ca ? { ca: this.#opts.ca } : {}),
      onRetry,
    });
    if (TERMINAL.has(this.#state)) return;
    await this.#stateDir.writeCredential(credential);
    // Only once the new credential is stored: a crash in between leaves the dir retired (the
    // next --re-enroll fixes it), never one without a marker that a token could enroll by itself.
    await this.#stateDir.clearRetired();
    await this.#stateDir.clearEnrollmentKey();
    this.#log.info('enrolled');
    this.emit('enrolled', { deviceId });
    this.#connect(credential);
  }

  /**
   * Opens the task journal and starts the runner, before any connection: tasks a crash
   * interrupted resume at once, online or not (their results wait in the journal).
   */
  async #startTasks(): Promise<void> {
    const journal = await TaskJournal.open({ dir: this.#stateDir.path, logger: this.#log });
    this.#journal = journal;
    const downloads = this.#opts.downloads;
    const fetcher = new Downloader({
      stateDir: this.#stateDir.path,
      logger: this.#log.child({ component: 'downloads' }),
      // Read at each download: the credential (with the pinned key and CA) may come later.
      trust: () => {
        const credential = this.#credential ?? this.#stored;
        return { manager: this.#opts.manager, ca: credential?.caCertificate ?? this.#opts.ca, signingKey: credential?.signingKey };
      },
      ...(downloads?.maxBytesPerSec ? { maxBytesPerSec: downloads.maxBytesPerSec } : {}),
      ...(downloads?.backoff ? { backoff: downloads.backoff } : {}),
    });
    // Part files of tasks that failed and were never retried: a week is long enough to retry.
    void fetcher.sweep(7 * 86_400_000).then(
      (removed) => removed.length > 0 && this.#log.info({ removed }, 'removed stale partial downloads'),
      () => {},
    );
    const runner = new TaskRunner({
      driver: this.#opts.driver,
      journal,
      fetcher,
      publish: (channel, message) => this.#link?.publish(channel, message) ?? Promise.reject(new Error('not connected yet')),
      logger: this.#log,
      onTaskEnded: () => this.#reporter?.reportNow(),
      resendIntervalMs: this.#opts.taskResendIntervalMs,
      progressIntervalMs: this.#opts.progressIntervalMs,
      ...(this.#opts.updater ? { agentUpdater: this.#opts.updater } : {}),
    });
    runner.on('task-started', (taskId) => this.emit('task-started', taskId));
    runner.on('task-finished', (result) => this.emit('task-finished', result));
    this.#tasks = runner;
    runner.start();
  }

  #connect(credential: EnrollResponse): void {
    if (TERMINAL.has(this.#state)) return;
    this.#credential = credential;
    this.#state = 'connecting';
    const resumed = this.#resumedLogin;
    this.#resumedLogin = undefined;
    const manager = this.#opts.manager;
    const link = new Link({
      deviceId: credential.deviceId,
      mqtt: resumed ? { ...credential.mqtt, password: resumed.password, username: resumed.username ?? credential.mqtt.username } : credential.mqtt,
      ca: credential.caCertificate ?? this.#opts.ca,
      fallback: resumed ? { username: credential.mqtt.username, password: credential.mqtt.password } : undefined,
      // Without the manager's URL (given only for enrollment) a refusal stays final.
      ...(manager ? {
        checkRefusal: (login: Login) => checkRefusedCredential({
          manager, deviceId: credential.deviceId, secret: login.password, logger: this.#log,
          ca: credential.caCertificate ?? this.#opts.ca, signal: this.#abort.signal, backoff: this.#opts.linkBackoff,
        }),
      } : {}),
      logger: this.#log,
      backoff: this.#opts.linkBackoff,
      stableAfterMs: this.#opts.stableAfterMs,
    });
    const reporter = new StatusReporter({
      driver: this.#opts.driver,
      publish: (message) => link.publish('status', message),
      intervalSec: this.#opts.statusIntervalSec ?? credential.statusIntervalSec,
      logger: this.#log,
      startedAt: this.#startedAt,
      ...(this.#opts.updater ? { onReported: () => this.#opts.updater!.healthy() } : {}),
    });
    const tasks = this.#tasks!;
    link.on('online', () => {
      this.#state = 'online';
      reporter.online();
      tasks.online();
      this.emit('online');
    });
    link.on('offline', (reason) => {
      reporter.offline();
      tasks.offline();
      if (this.#state === 'online') this.#state = 'offline';
      this.emit('offline', reason);
    });
    link.on('control', (message) => this.#onControl(message));
    link.on('task', (command) => tasks.handle(command));
    link.on('task-ack', (ack) => tasks.ack(ack));
    link.on('credential-rejected', (err) => void this.#onCredentialRejected(err));
    link.on('credential-confirmed', (login) => void this.#commitRotation(login));
    link.on('rotation-failed', () => void this.#stateDir.clearNextPassword().catch(() => {}));
    this.#link = link;
    this.#reporter = reporter;
    link.start();
  }

  #onControl(message: ControlMessage): void {
    switch (message.type) {
      case 'decommission':
        void this.#decommission(message.reason);
        return;
      case 'rotate-credential':
        void this.#rotate(message.password, message.username);
        return;
      default: {
        const unhandled: never = message;
        this.#log.warn({ type: (unhandled as { type: string }).type }, 'unknown control message');
      }
    }
  }

  /**
   * Credential rotation, device side (docs/security.md): the new password goes to disk first
   * (credential.next.json), then the link reconnects with it. Only once the broker accepted it
   * does it replace the stored credential; if refused, the link keeps the old one.
   */
  async #rotate(password: string, username: string | undefined): Promise<void> {
    try {
      await this.#stateDir.writeNextPassword(password, username);
    } catch (err) {
      this.#log.error({ err: describeError(err) }, 'cannot store the rotated credential; keeping the current one');
      return;
    }
    this.#link?.rotate(password, username);
  }

  async #commitRotation(login: Login): Promise<void> {
    const current = this.#credential;
    if (!current || (current.mqtt.password === login.password && current.mqtt.username === login.username)) return;
    const next = { ...current, mqtt: { ...current.mqtt, password: login.password, username: login.username } };
    try {
      await this.#stateDir.writeCredential(next);
      await this.#stateDir.clearNextPassword();
      this.#credential = next;
      this.#log.info('rotated credential confirmed and stored');
    } catch (err) {
      this.#log.error({ err: describeError(err) }, 'cannot store the rotated credential');
    }
  }

  async #decommission(reason: string | undefined): Promise<void> {
    if (TERMINAL.has(this.#state)) return;
    this.#log.warn({ reason }, 'decommissioned by the manager; marking the device retired and deleting the credential');
    const closed = this.#close('decommissioned'); // no presence: the manager already knows
    // Marker first: if the process dies in between, the next start refuses to run (or, with
    // only the credential left, has it refused and marks itself then). The credential is
    // deleted only once the marker is down, so no state of the dir lets a token re-enroll it.
    const why = reason ? `decommissioned by the manager: ${reason}` : 'decommissioned by the manager';
    if (await this.#retire(why)) {
      try {
        await this.#stateDir.deleteCredential();
      } catch (err) {
        this.#log.error({ err: describeError(err) }, 'could not delete the credential');
      }
    }
    this.#credential = undefined;
    await closed;
    this.emit('decommissioned', reason);
  }

  async #onCredentialRejected(cause: Error): Promise<void> {
    if (TERMINAL.has(this.#state)) return;
    const closed = this.#close('failed');
    // Refused means decommissioned (the manager deleted the device) or revoked. Enrolling
    // again with the token would bring the device back by itself, so the agent stops and
    // stays stopped until an operator asks for --re-enroll. The refused credential is kept:
    // if the refusal was the manager's mistake, deleting retired.json by hand lets it retry.
    const reason = "the manager refused this device's credential: it was decommissioned or its credential was revoked";
    await this.#retire(reason);
    await closed;
    const err = new AgentError(
      AgentErrorCodes.CREDENTIAL_REJECTED,
      `device ${this.#identity!.deviceId}: ${reason}; to enroll it again run pallas-agent with --re-enroll --token <new token>`,
      { cause },
    );
    this.#log.error(err.message);
    this.emit('credential-rejected', err);
  }

  /** Writes retired.json; false (logged) if it could not. */
  async #retire(reason: string): Promise<boolean> {
    try {
      await this.#stateDir.writeRetired({ reason, at: new Date().toISOString() });
      return true;
    } catch (err) {
      this.#log.error({ err: describeError(err) }, 'could not write the retired marker');
      return false;
    }
  }

  async #fail(err: unknown): Promise<void> {
    if (TERMINAL.has(this.#state)) return;
    await this.#close('failed');
    const error = err instanceof Error ? err : new Error(String(err));
    this.#log.error({ err: describeError(error) }, 'agent stopped on an error');
    // An 'error' event nobody listens to would throw and take down every agent in the process.
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  /** Tears everything down once; later callers wait for the same teardown. */
  #close(state: 'stopped' | 'decommissioned' | 'failed', presence?: { reason: string }): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#state = state;
      this.#abort.abort(new Error('agent stopped'));
      // The runner journals nothing more; a task still running is resumed at the next start.
      this.#tasks?.stop();
      this.#reporter?.offline();
      await this.#link?.close(presence ? { presence } : {});
      await this.#opts.driver.close().catch((err: unknown) => this.#log.warn({ err: describeError(err) }, 'driver close failed'));
      await this.#journal?.close().catch((err: unknown) => this.#log.warn({ err: describeError(err) }, 'task journal close failed'));
    })();
    return this.#shutdown;
  }

  /**
   * The facts to enroll with. A hypervisor that cannot be reached yet (an ESXi host still
   * booting beside the agent's VM, a password fixed later) is waited for, with the enrollment
   * backoff, rather than ending the agent: it enrolls once the host answers.
   */
  async #hostFactsOnceReachable(onRetry?: () => void): Promise<HostFacts> {
    const backoff = new Backoff({ baseMs: 1000, capMs: 30_000, ...this.#opts.enrollBackoff });
    for (;;) {
      try {
        return await this.#hostFacts();
      } catch (err) {
        if (!isDriverError(err, 'unavailable')) throw err;
        const delayMs = backoff.next();
        this.#log.warn({ err: describeError(err), retryInMs: delayMs }, 'host unavailable; enrolling once it answers');
        onRetry?.();
        await sleep(delayMs, undefined, { signal: this.#abort.signal });
      }
    }
  }

  async #hostFacts(): Promise<HostFacts> {
    const facts = await this.#opts.driver.hostFacts();
    return { ...facts, agentVersion: AGENT_VERSION, agentUptimeSec: Math.floor((Date.now() - this.#startedAt) / 1000) };
  }
}
