import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import { pino, type Logger } from 'pino';
import { PALLAS_VERSION, parseDeviceTopic } from '@pallas/protocol';
import { createBroker, deviceCaBundle, publicBrokerUrl } from './broker/create-broker.js';
import { RateLimiter } from './broker/rate-limit.js';
import type { Broker } from './broker/broker.js';
import { databaseUrlOf, type ManagerConfig } from './config/config.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { LocalFolderStore } from './artifact-store/local-folder/local-folder-store.js';
import { ArtifactsService } from './services/artifacts/artifacts-service.js';
import { DownloadUrlSigner, ManifestSigner } from './services/artifacts/manager-keys.js';
import { ApiTokensService } from './services/api-tokens/api-tokens-service.js';
import { AuditPruner } from './services/audit/audit-pruner.js';
import { AuditService } from './services/audit/audit-service.js';
import { LoginThrottle } from './services/auth/login-throttle.js';
import { SessionsService } from './services/auth/sessions-service.js';
import { DeviceCredentials } from './services/devices/device-credentials.js';
import { DevicesService } from './services/devices/devices-service.js';
import { StatusBuffer } from './services/devices/status-buffer.js';
import { DeviceActivity } from './services/devices/device-activity.js';
import { DeviceBrokerAccounts } from './services/devices/device-broker-accounts.js';
import { DeviceInventory } from './services/devices/device-inventory.js';
import { OnlineDevices } from './services/devices/online-devices.js';
import { EnrollmentService } from './services/enrollment/enrollment-service.js';
import { EventBus } from './services/live/event-bus.js';
import { DeadlineSweep } from './services/tasks/deadline-sweep.js';
import { TaskOutbox } from './services/tasks/task-outbox.js';
import { TaskReports } from './services/tasks/task-reports.js';
import { TasksService } from './services/tasks/tasks-service.js';
import { GroupsService } from './services/groups/groups-service.js';
import { RolloutEngine } from './services/rollouts/rollout-engine.js';
import { RolloutsService } from './services/rollouts/rollouts-service.js';
import { UsersService } from './services/users/users-service.js';
import { openStore, type Store } from './store/store.js';
import { loadTls, type TlsMaterial } from './security/tls.js';
import { CloneDetector } from './services/devices/clone-detector.js';
import { requireRole } from './transport/http/auth.js';
import type { App } from './transport/http/context.js';
import { SLOW_CLIENT_TIMEOUTS, createHttpServer } from './transport/http/server.js';
import { FleetSummaryService } from './services/fleet/fleet-summary-service.js';
import { DeviceRouter } from './transport/mqtt/device-router.js';
import { PlainHttpServer } from './transport/http/plain-server.js';
import { Services } from './lifecycle.js';
import { ClusterStatusService } from './services/cluster/cluster-status.js';
import { ExclusiveJob } from './services/cluster/exclusive-job.js';
import { Leases } from './services/cluster/leases.js';
import { ManagerInstances, newInstanceId } from './services/cluster/manager-instances.js';
import { ClusterRelay } from './services/live/cluster-relay.js';
import { StrandedTasks } from './services/tasks/stranded-tasks.js';
import { StalePresence } from './services/devices/stale-presence.js';
import { presenceBounds } from './services/devices/presence-bounds.js';
import { UnresponsiveSweep } from './services/devices/unresponsive-sweep.js';
import { HistoryRecorder } from './services/history/history-recorder.js';
import { FleetSampler } from './services/history/fleet-sampler.js';
import { HistoryPruner } from './services/history/history-pruner.js';
import { HistoryReader } from './services/history/history-reader.js';

const LOOPBACK = '127.0.0.1';

export interface RunningManager {
  config: ManagerConfig;
  /** Plain listeners are null when off (production mode without an explicit port). */
  ports: { http: number | null; https: number; mqtt: number | null; mqtts: number };
  tls: TlsMaterial;
  /** Set when this start created the first admin with a generated password. */
  generatedAdminPassword?: string;
  store: Store;
  broker: Broker;
  http: App;
  metrics: Metrics;
  logger: Logger;
  services: {
    users: UsersService; sessions: SessionsService; devices: DevicesService; enrollment: EnrollmentService; tasks: TasksService;
    audit: AuditService; apiTokens: ApiTokensService; artifacts: ArtifactsService; groups: GroupsService; rollouts: RolloutsService;
    rolloutEngine: RolloutEngine;
  };
  events: EventBus;
  stop(): Promise<void>;
}

/**
 * The composition root: builds the graph of services and the two transports, registers those
 * with a lifecycle in one list (start order), starts them and returns a handle that stops them
 * in reverse order.
 */
export async function startManager(config: ManagerConfig, logger: Logger = pino({ level: config.logLevel })): Promise<RunningManager> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const metrics = createMetrics();
  const store = await openStore(databaseUrlOf(config), config.databaseReadUrl);
  const services = new Services(logger);
  services.add({ name: 'store', start: () => store.migrate(), stop: () => store.close() });
  const stop = () => services.stop();
  try {
    await services.start(); // the store, migrated: the services below read it while they are built

    const users = new UsersService(store);
    const bootstrap = await users.bootstrapAdmin(config.adminPassword);
    const sessions = new SessionsService(store, users, config.sessionTtlSec);
    await sessions.prune();
    const apiTokens = new ApiTokensService(store);
    const audit = new AuditService({ store, logger: logger.child({ component: 'audit' }), onWriteError: () => metrics.auditWriteErrors.inc() });
    // Audit records are written in batches (AuditService#write); stopped after the listeners
    // and before the store, so the last calls' records are written before the store closes.
    services.add({ name: 'audit', start: async () => {}, stop: () => audit.drain() });
    const auditPruner = new AuditPruner({ audit, retentionDays: config.auditRetentionDays, logger });
    const throttle = new LoginThrottle(store, { maxAccountFailures: config.loginMaxFailures, maxAddressFailures: config.loginAddressMaxFailures });

    const tls = await loadTls({
      dataDir: config.dataDir, certFile: config.tlsCert, keyFile: config.tlsKey, caFile: config.tlsCa,
      extraNames: config.tlsHostnames?.split(','),
    });
    const credentials = new DeviceCredentials(store);
    const broker = createBroker(config, { tls, authenticator: credentials, logger });
    // A device over its message rate would log every dropped message: log it once per 10 s.
    const rateLogged = new Map<string, number>();
    broker.on('rejected', (reason, clientId, detail) => {
      metrics.mqttRejected.inc({ reason });
      if (reason === 'rate_limited' && clientId) {
        const now = Date.now();
        if (now - (rateLogged.get(clientId) ?? 0) < 10_000) return;
        if (rateLogged.size > 10_000) rateLogged.clear();
        rateLogged.set(clientId, now);
      }
      logger.warn({ reason, client: clientId, detail }, 'mqtt client refused');
    });
    broker.on('published', (topic) => {
      const channel = parseDeviceTopic(topic)?.channel;
      if (channel) metrics.mqttMessagesOut.inc({ channel });
    });
    broker.on('connected', () => metrics.devicesConnected.set(broker.connectedCount() ?? 0));
    broker.on('disconnected', () => metrics.devicesConnected.set(broker.connectedCount() ?? 0));
    // An external broker keeps device credentials itself: its clients follow the registry.
    const brokerAccounts = broker.accounts ? new DeviceBrokerAccounts({ store, accounts: broker.accounts, logger: logger.child({ component: 'broker-accounts' }) }) : undefined;

    // Managers sharing one database (docs/scale-out.md): each has an id, says it is alive,
    // and work that must run once across them holds a lease.
    const instanceId = newInstanceId();
    const leases = new Leases(store, instanceId);

    const events = new EventBus(10_000, instanceId);
    const online = new OnlineDevices();
    const inventory = new DeviceInventory({ store, events, logger: logger.child({ component: 'inventory' }), flushMs: config.statusFlushMs });
    const status = new StatusBuffer(store, config.statusFlushMs, logger, (messages, rows) => {
      metrics.statusPersisted.inc(messages);
      metrics.statusRowsWritten.inc(rows);
    }, () => inventory.flush());
    // History (docs/history.md): the recorder hears what each status flush wrote; the fleet
    // sampler and the pruner run once across managers, under leases.
    const history = new HistoryRecorder({ store, logger: logger.child({ component: 'history' }), onWritten: (rows) => metrics.historyRowsWritten.inc(rows) });
    if (config.keepHistory) {
      status.onWritten = (rows) => {
        try {
          history.observe(rows);
        } catch (err) {
          logger.error({ err }, 'could not record device history');
        }
      };
    }
    const urls = new DownloadUrlSigner(config.dataDir);
    const artifacts = new ArtifactsService({
      store,
      blobs: new LocalFolderStore(resolve(config.dataDir, config.artifactsDir ?? 'artifacts')),
      signer: new ManifestSigner(config.dataDir),
      urls,
      maxBytes: config.maxArtifactBytes,
      logger: logger.child({ component: 'artifacts' }),
    });
    // A run that names artifacts carries their grants: signed manifest and a fresh device URL.
    const outbox = new TaskOutbox({
      store, broker, online, events, logger: logger.child({ component: 'tasks' }),
      grants: (list) => artifacts.grantsFor(list, config.downloadUrlTtlSec),
      instanceId,
    });
    const groups = new GroupsService(store);
    const tasks = new TasksService({
      store, outbox, events, logger: logger.child({ component: 'tasks' }), artifactKinds: (ids) => artifacts.kindsOf(ids),
      groupMembers: (groupId) => groups.memberIds(groupId),
    });
    // The rollout engine's tick is safe to run on every manager at once (compare-and-set on
    // every transition, docs/rollouts.md), so each manager ticks it: a rollout moves as soon as
    // any manager hears of a task ending, and no lease hand-over can stall it.
    const rolloutEngine = new RolloutEngine({
      store, tasks, groups, events, audit, logger: logger.child({ component: 'rollouts' }), intervalMs: config.rolloutTickMs,
      artifactVersion: async (id) => (await artifacts.get(id).catch(() => null))?.version ?? null,
    });
    const rollouts = new RolloutsService({ store, tasks, groups, engine: rolloutEngine, events });
    const activity = new DeviceActivity({ online, outbox, events, store, sharedBroker: broker.kind === 'external' });
    const reports = new TaskReports({
      store, broker, outbox, events, inventory, logger: logger.child({ component: 'tasks' }),
      onApplied: (n) => {
        metrics.taskReports.inc({ type: 'progress' }, n.progress);
        metrics.taskReports.inc({ type: 'result' }, n.results - n.late);
        metrics.taskReports.inc({ type: 'late' }, n.late);
      },
    });
    const sweep = new DeadlineSweep({ store, outbox, events, logger: logger.child({ component: 'tasks' }) });
    const devices = new DevicesService({
      store, broker, credentials, status, logger, brokerAccounts,
      onDecommissioned: async (id) => {
        await tasks.cancelAllForDevice(id, 'the device was decommissioned');
        await history.removed(id).catch((err: unknown) => logger.error({ err, device: id }, 'could not delete the device\'s history'));
        activity.removed(id);
        inventory.removed(id);
      },
      onCutOff: (device) => activity.cutOff(device.id, device.lastSeenAt),
    });
    const enrollment = new EnrollmentService({
      store,
      credentials,
      brokerAccounts,
      settings: {
        keepaliveSec: config.keepaliveSec, statusIntervalSec: config.statusIntervalSec,
        requireApproval: config.requireApproval, caCertificate: deviceCaBundle(config, tls.ca), signingKey: artifacts.signingKey,
      },
      logger,
    });
    // The one place where device security events reach the audit log (clone suspicion and a
    // rotation confirmed by the device; operator actions are audited by the HTTP layer).
    const auditDevice = (action: string, deviceId: string, detail: Record<string, unknown>, outcome: 'ok' | 'denied' = 'ok') =>
      void audit.record({ actor: { kind: 'device', id: deviceId }, action, target: { kind: 'device', id: deviceId }, outcome, ip: broker.addressOf(deviceId) ?? undefined, detail });
    credentials.onRotated = (id) => {
      logger.info({ device: id }, 'device confirmed its rotated credential');
      auditDevice('device.credential-rotated', id, {});
    };
    if (brokerAccounts) brokerAccounts.onRotated = credentials.onRotated;
    const clones = new CloneDetector({
      onSuspected: (id, why) => {
        metrics.mqttRejected.inc({ reason: 'clone_suspected' });
        logger.warn({ device: id, why }, 'device credential may be in use in two places');
        auditDevice('device.clone-suspected', id, { why }, 'denied');
        devices.addFlag(id, 'credential_clone_suspected').catch((err: unknown) => logger.error({ err, device: id }, 'could not flag device'));
      },
    });
    broker.on('takeover', (id, previous, address) => clones.takeover(id, previous, address));
    // A device cut off for breaking the protocol (QoS 2, retain, subscription spray): once a
    // minute per device at most, so a device reconnecting in a loop cannot fill the log.
    const cutOffAudited = new RateLimiter(1 / 60, 1);
    broker.on('cutOff', (id, reason, detail) => {
      if (cutOffAudited.take(id)) auditDevice('device.cut-off', id, { reason, detail }, 'denied');
    });

    const router = new DeviceRouter({
      broker, status, activity, inventory, tasks: reports, metrics, logger,
      onUsername: (id, username) => void brokerAccounts?.seen(id, username).catch((err: unknown) => logger.error({ err, device: id }, 'could not confirm a rotated broker credential')),
    });
    const instances = new ManagerInstances({
      id: instanceId, store, logger, version: PALLAS_VERSION, url: null, broker: broker.kind,
      keysFingerprint: `${artifacts.signingKey.keyId}:${urls.fingerprint}`,
    });
    const stranded = new StrandedTasks({ store, instances, outbox, online, logger: logger.child({ component: 'tasks' }) });
    const fleetSummary = new FleetSummaryService({ store });
    const fleetSampler = new FleetSampler({ store, logger: logger.child({ component: 'history' }) });
    const historyPruner = new HistoryPruner({ store, logger: logger.child({ component: 'history' }) });
    const jobs = [
      // Leases outlive their interval (the default, 3×), so `pallas cluster` shows who holds each
      // job between its runs; a dead holder's pruning moves on within that time, which is soon enough.
      new ExclusiveJob({ name: 'audit-prune', leases, run: () => auditPruner.prune(), intervalMs: 3_600_000, logger }),
      new ExclusiveJob({
        name: 'login-throttle-prune', leases, intervalMs: 600_000, logger,
        run: () => throttle.prune().catch((err: unknown) => logger.error({ err }, 'login throttle pruning failed')),
      }),
      new ExclusiveJob({ name: 'task-deadlines', leases, run: () => sweep.sweep(), intervalMs: config.taskSweepMs, logger }),
      // A short lease: when its holder dies, another manager must take over its tasks within
      // seconds (failover). Two sweeps at once are harmless: claims are conditional updates.
      new ExclusiveJob({ name: 'stranded-tasks', leases, run: () => stranded.sweep(), intervalMs: 1_000, ttlMs: 3_000, logger }),
    ];
    // Unresponsive: connected but silent past its status bound (docs/manager.md, "Presence").
    const bounds = presenceBounds({ statusIntervalSec: config.statusIntervalSec, keepaliveSec: config.keepaliveSec, missedReports: config.unresponsiveAfterReports });
    if (!bounds.unresponsiveFirst) {
      logger.info({ ...bounds }, 'a silent device is cut off by the keepalive before it can be shown unresponsive: status interval too long for the keepalive (docs/manager.md, "Presence")');
    }
    const unresponsive = new UnresponsiveSweep({
      store, activity, logger, unresponsiveAfterMs: bounds.unresponsiveAfterMs,
      ...(config.keepHistory ? { onMarked: (id: string, at: string) => history.presenceChanged(id, 'unresponsive', at) } : {}),
    });
    jobs.push(new ExclusiveJob({ name: 'unresponsive-presence', leases, run: () => unresponsive.sweep(), intervalMs: bounds.sweepMs, logger }));
    if (config.keepHistory) {
      jobs.push(
        new ExclusiveJob({ name: 'history-sample', leases, run: () => fleetSampler.sample(), intervalMs: 60_000, logger }),
        new ExclusiveJob({ name: 'history-prune', leases, run: () => historyPruner.prune(), intervalMs: 3_600_000, logger }),
      );
    }
    if (broker.kind === 'external') {
      const stale = new StalePresence({ store, activity, logger, statusIntervalSec: config.statusIntervalSec, keepaliveSec: config.keepaliveSec });
      jobs.push(new ExclusiveJob({ name: 'stale-presence', leases, run: () => stale.sweep(), intervalMs: 10_000, logger }));
    }
    const relay = store.dialect === 'postgres'
      ? new ClusterRelay({ databaseUrl: databaseUrlOf(config), store, bus: events, instanceId, logger: logger.child({ component: 'cluster' }) })
      : undefined;
    const bracket = (h: string) => (h.includes(':') ? `[${h}]` : h);
    let plainHandler: RequestListener | undefined;

    const http = await createHttpServer(
      {
        users, sessions, apiTokens, audit, throttle, devices, enrollment, tasks, groups, rollouts, artifacts, events, broker, store, metrics,
        fleet: fleetSummary,
        history: new HistoryReader({ store }),
        cluster: new ClusterStatusService({ store, instances, leases, brokerKind: broker.kind, brokerHealth: () => broker.health() }),
        downloadUrlTtlSec: config.downloadUrlTtlSec,
        guard: (minimum) => requireRole({ sessions, apiTokens }, minimum),
        // A device that enrolled over HTTPS gets MQTT over TLS; one that enrolled over plain
        // HTTP (development, or TLS ended by a proxy in front) gets the plain port if it is on.
        // The ports are read when asked: they are known once the broker has started.
        mqttUrlFor: (hostname, secure) => {
          const { mqtt, mqtts } = broker.ports;
          return config.mqttPublicUrl ?? (config.brokerUrl ? publicBrokerUrl(config.brokerUrl) : undefined)
            ?? (secure || mqtt === null ? `mqtts://${bracket(hostname)}:${mqtts!}` : `mqtt://${bracket(hostname)}:${mqtt}`);
        },
      },
      {
        logger, maxBodyBytes: config.maxBodyBytes, metricsToken: config.metricsToken, trustProxy: config.trustProxy, tls: { key: tls.key, cert: tls.cert }, onHandler: (h) => { plainHandler = h; },
        slowBody: { bodyTimeoutMs: config.bodyTimeoutSec * 1000, uploadMinBytes: config.uploadMinBytes, uploadWindowMs: config.uploadWindowSec * 1000 },
      },
    );
    // Plain HTTP serves the same routes (the handler Fastify built) for a TLS-terminating proxy;
    // it carries passwords and tokens in clear, so it listens on loopback unless told otherwise.
    const plain = config.httpPort === undefined ? null : new PlainHttpServer(plainHandler!, config.httpPort, config.httpHost ?? LOOPBACK, SLOW_CLIENT_TIMEOUTS);

    // The embedded broker starts empty, so nobody is connected yet whatever the store says.
    // (An external broker keeps its sessions across a manager's restart: nothing to mark.)
    if (broker.kind === 'embedded') await devices.markAllOffline();
    else {
      // A manager joining others starts from what the store says; after its own link to the
      // broker was down it missed presence messages the others handled: it reads them again.
      online.replaceAll(await devices.onlineIds());
      broker.on('relinked', () => {
        devices.onlineIds().then((ids) => online.replaceAll(ids), (err: unknown) => logger.warn({ err }, 'could not re-read which devices are online'));
      });
    }
    services.add(
      // First: a manager whose keys differ from the live ones' must not join.
      instances,
      ...(relay ? [relay] : []),
      { name: 'broker', start: () => broker.start(), stop: () => broker.stop() },
      { name: 'broker accounts', start: async () => void await brokerAccounts?.reconcile(), stop: async () => {} },
      ...(config.keepHistory ? [history] : []), // before the status buffer: it stops after it and writes what the last flush gave it
      status,
      inventory,
      reports,
      activity,
      router,
      ...jobs,
      rolloutEngine,
      {
        name: 'https',
        // Fastify builds the address it logs from its own options, where TLS is not (the server
        // comes from serverFactory): it would say http:// for the HTTPS listener.
        start: async () => void await http.listen({
          port: config.httpsPort, host: config.httpHost ?? '0.0.0.0', listenTextResolver: (address) => `HTTPS listening at ${address.replace(/^http:/, 'https:')}`,
        }),
        stop: () => http.close(),
      },
      ...(plain ? [plain] : []),
    );
    await services.start();
    for (const job of jobs) await job.tick(); // run each once now, where this manager holds the lease

    const ports = {
      http: plain?.port ?? null, https: (http.server.address() as AddressInfo).port, mqtt: broker.ports.mqtt, mqtts: broker.ports.mqtts!,
    };
    writeFileSync(join(config.dataDir, 'ports.json'), `${JSON.stringify(ports, null, 2)}\n`);
    return {
      config, ports, tls, store, broker, http, metrics, logger, stop, events,
      services: { users, sessions, devices, enrollment, tasks, audit, apiTokens, artifacts, groups, rollouts, rolloutEngine },
      ...(bootstrap.generatedPassword ? { generatedAdminPassword: bootstrap.generatedPassword } : {}),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
