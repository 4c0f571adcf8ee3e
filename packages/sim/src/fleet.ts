import { join, resolve } from 'node:path';
import { Agent, createDriver, describeError, type BackoffOptions, type SimDriverOptions } from '@pallas/agent';
import { createLimiter } from '@pallas/protocol';
import { pino, type Logger } from 'pino';

export interface FleetOptions {
  /** Manager base URL. */
  manager: string;
  /** Enrollment token; needs at least `devices` uses left for a fresh state dir. */
  token: string;
  /** Number of simulated devices. Default 10. */
  devices?: number;
  /** Device n keeps its identity in `<stateDir>/device-000n`. Default `./pallas-sim-state`. */
  stateDir?: string;
  /** Enrollment requests in flight at once, across the fleet. Default 50. */
  concurrency?: number;
  /** Overrides the manager's status interval for every device. */
  statusIntervalSec?: number;
  /** Default: a silent logger. */
  logger?: Logger;
  /** MQTT reconnect delays for every agent (tests shrink them). */
  linkBackoff?: BackoffOptions;
  /** Enrollment retry delays for every agent. */
  enrollBackoff?: BackoffOptions;
  /** VMs per simulated host. Default 3. */
  vmCount?: number;
  /** How long each simulated VM operation takes (see the sim driver). Default 50 ms. */
  latencyMs?: number;
  /** Injected failures for every device of this fleet, e.g. `{createVm: 'host_error'}` (the sim driver's `failOn`). Default none. */
  failOn?: SimDriverOptions['failOn'];
  /**
   * Keep each simulated host in `<device dir>/sim-host.json`, so that its VMs survive a restart
   * and can be changed "by hand" by editing the file. Default true; benchmarks turn it off so
   * that they measure the agent and the manager, not the simulator's own bookkeeping.
   */
  hostStateFiles?: boolean;
  /** Wraps every enrollment request; replaces the default limiter of `concurrency` (benchmarks time requests here). */
  enrollGate?: <T>(attempt: () => Promise<T>) => Promise<T>;
  /** Called for each agent before it starts, e.g. to listen to its events. */
  onAgent?: (agent: Agent, index: number) => void;
}

export interface Fleet {
  /** One per device, index 0 = `device-0001`. */
  readonly agents: readonly Agent[];
  onlineCount(): number;
  enrolledCount(): number;
  /** Resolves once `count` (default: all) agents are online at the same time. */
  waitOnline(count?: number, timeoutMs?: number): Promise<void>;
  /** Stops every agent (presence offline, clean disconnect). */
  stop(): Promise<void>;
}

/** `device-0001`, …: zero-padded so that directory listings sort by index. */
export function deviceDirName(index: number): string {
  return `device-${String(index).padStart(4, '0')}`;
}

/**
 * Runs `devices` real agents with the sim driver in this process, each with its own
 * identity, state dir and MQTT connection. Resolves once every agent has started (enrolled
 * or still retrying in the background); use `waitOnline()` to wait for the links.
 */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const count = options.devices ?? 10;
  const stateDir = resolve(options.stateDir ?? 'pallas-sim-state');
  const logger = options.logger ?? pino({ level: 'silent' });
  const gate = options.enrollGate ?? createLimiter(options.concurrency ?? 50);
  const agents: Agent[] = [];
  let online = 0;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const w of waiters) w();
  };

  for (let i = 1; i <= count; i++) {
    const name = deviceDirName(i).replace('device-', 'sim-');
    const driver = await createDriver('sim', {
      seed: i, hostname: name, vmCount: options.vmCount,
      ...(options.hostStateFiles !== false ? { stateFile: join(stateDir, deviceDirName(i), 'sim-host.json') } : {}),
      ...(options.latencyMs !== undefined ? { latencyMs: options.latencyMs } : {}),
      ...(options.failOn ? { failOn: options.failOn } : {}),
    });
    const agent = new Agent({
      stateDir: join(stateDir, deviceDirName(i)),
      driver,
      manager: options.manager,
      token: options.token,
      logger: logger.child({ sim: name }),
      statusIntervalSec: options.statusIntervalSec,
      linkBackoff: options.linkBackoff,
      enrollBackoff: options.enrollBackoff,
      enrollGate: gate,
    });
    agent.on('online', () => {
      online++;
      notify();
    });
    agent.on('offline', () => {
      online--;
      notify();
    });
    agent.on('error', (err) => logger.error({ sim: name, err: describeError(err) }, 'simulated device stopped'));
    agent.on('credential-rejected', (err) => logger.error({ sim: name, err: err.message }, 'simulated device stopped'));
    agent.on('decommissioned', () => logger.warn({ sim: name }, 'simulated device decommissioned'));
    agents.push(agent);
    options.onAgent?.(agent, i - 1);
  }

  // Enrollment concurrency is bounded by the gate inside each agent; starting them all at
  // once only queues them. A device whose start fails (e.g. token used up) is reported and
  // left stopped; the rest of the fleet runs on.
  const results = await Promise.allSettled(agents.map((a) => a.start()));
  results.forEach((r, i) => {
    if (r.status === 'rejected') logger.error({ sim: deviceDirName(i + 1), err: describeError(r.reason) }, 'simulated device failed to start');
  });
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length === agents.length && agents.length > 0) {
    await Promise.all(agents.map((a) => a.stop()));
    throw (failed[0] as PromiseRejectedResult).reason;
  }

  return {
    agents,
    onlineCount: () => online,
    enrolledCount: () => agents.filter((a) => a.enrolled).length,
    waitOnline(target = count, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (online < target) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`only ${online} of ${target} devices online after ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      await Promise.all(agents.map((a) => a.stop()));
    },
  };
}
