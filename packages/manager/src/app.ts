import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer as createPlainServer, type RequestListener, type Server as PlainServer } from 'node:http';
import { pino, type Logger } from 'pino';
import { parseDeviceTopic } from '@pallas/protocol';
import { EmbeddedBroker } from './broker/embedded/aedes-broker.js';
import { RateLimiter } from './broker/rate-limit.js';
import type { Broker } from './broker/broker.js';
import { databaseUrlOf, type ManagerConfig } from './config/config.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { LocalFolderStore } from './artifact-store/local-folder/local-folder-store.js';
import { ArtifactsService } from './services/artifacts/artifacts-service.js';
import { DownloadUrlSigner, ManifestSigner } from './services/artifacts/manager-keys.js';
import { ApiTokensService } from './services/api-tokens/api-tokens-service.js';
import { AuditService } from './services/audit/audit-service.js';
import { LoginThrottle } from './services/auth/login-throttle.js';
import { SessionsService } from './services/auth/sessions-service.js';
import { DeviceCredentials } from './services/devices/device-credentials.js';
import { DevicesService } from './services/devices/devices-service.js';
import { StatusBuffer } from './services/devices/status-buffer.js';
import { DeviceActivity } from './services/devices/device-activity.js';
import { OnlineDevices } from './services/devices/online-devices.js';
import { EnrollmentService } from './services/enrollment/enrollment-service.js';
import { EventBus } from './services/live/event-bus.js';
import { DeadlineSweep } from './services/tasks/deadline-sweep.js';
import { TaskOutbox } from './services/tasks/task-outbox.js';
import { TaskReports } from './services/tasks/task-reports.js';
import { TasksService } from './services/tasks/tasks-service.js';
import { UsersService } from './services/users/users-service.js';
import { openStore, type Store } from './store/store.js';
import { loadTls, type TlsMaterial } from './security/tls.js';
import { CloneDetector } from './services/devices/clone-detector.js';
import { requireRole } from './transport/http/auth.js';
import type { App } from './transport/http/context.js';
import { SLOW_CLIENT_TIMEOUTS, createHttpServer } from './transport/http/server.js';
import { FleetSummaryService } from './services/fleet/fleet-summary-service.js';
import { DeviceRouter } from './transport/mqtt/device-router.js';

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
    audit: AuditService; apiTokens: ApiTokensService; artifacts: ArtifactsService;
  };
  events: EventBus;
  stop(): Promise<void>;
}

/**
 * The composition root: opens the store, starts the broker, wires the services and the
 * two transports, and returns a handle that stops them in reverse order.
 */
export async function startManager(config: ManagerConfig, logger: Logger = pino({ level: config.logLevel })): Promise<RunningManager> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const metrics = createMetrics();
  const store = await openStore(databaseUrlOf(config), config.databaseReadUrl);
  const stops: Array<() => Promise<void>> = [() => store.close()];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => logger.error({ err }, 'error while stopping'));
  };
  try {
    await store.migrate();

    const users = new UsersService(store);
    const bootstrap = await users.bootstrapAdmin(config.adminPassword);
    const sessions = new SessionsService(store, users, config.sessionTtlSec);
    await sessions.prune();
    const apiTokens = new ApiTokensService(store);
    const audit = new AuditService({ store, logger: logger.child({ component: 'audit' }), onWriteError: () => metrics.auditWriteErrors.inc() });
    const pruneAudit = async () => {
      const n = await audit.prune(config.auditRetentionDays).catch((err: unknown) => {
        logger.error({ err }, 'audit log pruning failed');
        return 0;
      });
      if (n > 0) logger.info({ deleted: n, retentionDays: config.auditRetentionDays }, 'pruned the audit log');
    };
    await pruneAudit();
    const auditPruneTimer = setInterval(() => void pruneAudit(), 86_400_000);
    auditPruneTimer.unref();
    stops.push(async () => clearInterval(auditPruneTimer));
    const throttle = new LoginThrottle(store, { maxAccountFailures: config.loginMaxFailures, maxAddressFailures: config.loginAddressMaxFailures });
    const pruneThrottle = () => throttle.prune().catch((err: unknown) => logger.error({ err }, 'login throttle pruning failed'));
    await pruneThrottle();
    const throttlePruneTimer = setInterval(() => void pruneThrottle(), 600_000);
    throttlePruneTimer.unref();
    stops.push(async () => clearInterval(throttlePruneTimer));

    const tls = await loadTls({
      dataDir: config.dataDir, certFile: config.tlsCert, keyFile: config.tlsKey, caFile: config.tlsCa,
      extraNames: config.tlsHostnames?.split(','),
    });
    const credentials = new DeviceCredentials(store);
    const broker: Broker = new EmbeddedBroker({
      host: config.mqttHost ?? '0.0.0.0',
      // Plain listeners carry passwords and tokens in clear: loopback unless an address is given.
      plainHost: config.mqttHost ?? LOOPBACK,
      port: config.mqttPort ?? null,
      tls: { port: config.mqttsPort, key: tls.key, cert: tls.cert },
      maxMessageBytes: config.maxMessageBytes,
      messageRate: { perSec: config.deviceMessageRate, burst: config.deviceMessageRate * 10 },
      connectRate: { perSec: config.mqttConnectRate, burst: config.mqttConnectRate * 10, includeLoopback: config.mqttConnectRateLoopback },
      authenticator: credentials,
      logger: logger.child({ component: 'broker' }),
    });
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
    broker.on('connected', () => metrics.devicesConnected.set(broker.connectedCount()));
    broker.on('disconnected', () => metrics.devicesConnected.set(broker.connectedCount()));

    const status = new StatusBuffer(store, config.statusFlushMs, logger, (messages, rows) => {
      metrics.statusPersisted.inc(messages);
      metrics.statusRowsWritten.inc(rows);
    });
    const events = new EventBus();
    const online = new OnlineDevices();
    const artifacts = new ArtifactsService({
      store,
      blobs: new LocalFolderStore(resolve(config.dataDir, config.artifactsDir ?? 'artifacts')),
      signer: new ManifestSigner(config.dataDir),
      urls: new DownloadUrlSigner(config.dataDir),
      maxBytes: config.maxArtifactBytes,
      logger: logger.child({ component: 'artifacts' }),
    });
    // A run that names artifacts carries their grants: signed manifest and a fresh device URL.
    const outbox = new TaskOutbox({
      store, broker, online, events, logger: logger.child({ component: 'tasks' }),
      grants: (list) => artifacts.grantsFor(list, config.downloadUrlTtlSec),
    });
    const tasks = new TasksService({ store, outbox, events, logger: logger.child({ component: 'tasks' }), artifactKinds: (ids) => artifacts.kindsOf(ids) });
    const activity = new DeviceActivity({ online, outbox, events });
    const reports = new TaskReports({
      store, broker, outbox, events, logger: logger.child({ component: 'tasks' }),
      onApplied: (n) => {
        metrics.taskReports.inc({ type: 'progress' }, n.progress);
        metrics.taskReports.inc({ type: 'result' }, n.results - n.late);
        metrics.taskReports.inc({ type: 'late' }, n.late);
      },
      onInventory: (deviceId, vms) => {
        status.dropInventory(deviceId);
        activity.inventory(deviceId, vms);
      },
    });
    const sweep = new DeadlineSweep({ store, outbox, events, logger: logger.child({ component: 'tasks' }), intervalMs: config.taskSweepMs });
    const devices = new DevicesService({
      store, broker, credentials, status, logger,
      onDecommissioned: async (id) => {
        await tasks.cancelAllForDevice(id, 'the device was decommissioned');
        activity.removed(id);
      },
    });
    const enrollment = new EnrollmentService({
      store,
      credentials,
      settings: {
        keepaliveSec: config.keepaliveSec, statusIntervalSec: config.statusIntervalSec,
        requireApproval: config.requireApproval, caCertificate: tls.ca, signingKey: artifacts.signingKey,
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

    // The embedded broker starts empty, so nobody is connected yet whatever the store says.
    await devices.markAllOffline();
    await broker.start();
    stops.push(() => broker.stop());
    status.start();
    stops.push(() => status.stop());
    stops.push(() => reports.stop());
    await new DeviceRouter({ broker, status, activity, tasks: reports, metrics, logger }).start();
    sweep.start();
    stops.push(() => sweep.stop());
    const mqttPort = broker.ports.mqtt;
    const mqttsPort = broker.ports.mqtts!;
    const bracket = (h: string) => (h.includes(':') ? `[${h}]` : h);
    let plainHandler: RequestListener | undefined;

    const http = await createHttpServer(
      {
        users, sessions, apiTokens, audit, throttle, devices, enrollment, tasks, artifacts, events, broker, store, metrics,
        fleet: new FleetSummaryService({ store }),
        downloadUrlTtlSec: config.downloadUrlTtlSec,
        guard: (minimum) => requireRole({ sessions, apiTokens }, minimum),
        // A device that enrolled over HTTPS gets MQTT over TLS; one that enrolled over plain
        // HTTP (development, or TLS ended by a proxy in front) gets the plain port if it is on.
        mqttUrlFor: (hostname, secure) =>
          config.mqttPublicUrl ?? (secure || mqttPort === null ? `mqtts://${bracket(hostname)}:${mqttsPort}` : `mqtt://${bracket(hostname)}:${mqttPort}`),
      },
      { logger, maxBodyBytes: config.maxBodyBytes, metricsToken: config.metricsToken, trustProxy: config.trustProxy, tls: { key: tls.key, cert: tls.cert }, onHandler: (h) => { plainHandler = h; } },
    );
    await http.listen({ port: config.httpsPort, host: config.httpHost ?? '0.0.0.0' });
    stops.push(() => http.close());
    const httpsPort = (http.server.address() as AddressInfo).port;
    let httpPort: number | null = null;
    if (config.httpPort !== undefined) {
      // Plain HTTP serves the same routes (the handler Fastify built) for a TLS-terminating proxy.
      const { idleMs, ...timeouts } = SLOW_CLIENT_TIMEOUTS;
      const plain: PlainServer = createPlainServer(timeouts, plainHandler!);
      plain.setTimeout(idleMs);
      await new Promise<void>((resolve, reject) => {
        plain.once('error', reject);
        plain.listen(config.httpPort, config.httpHost ?? LOOPBACK, () => resolve());
      });
      stops.push(() => new Promise<void>((resolve) => { plain.closeAllConnections(); plain.close(() => resolve()); }));
      httpPort = (plain.address() as AddressInfo).port;
    }

    const ports = { http: httpPort, https: httpsPort, mqtt: mqttPort, mqtts: mqttsPort };
    writeFileSync(join(config.dataDir, 'ports.json'), `${JSON.stringify(ports, null, 2)}\n`);
    return {
      config, ports, tls, store, broker, http, metrics, logger, stop, events,
      services: { users, sessions, devices, enrollment, tasks, audit, apiTokens, artifacts },
      ...(bootstrap.generatedPassword ? { generatedAdminPassword: bootstrap.generatedPassword } : {}),
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
