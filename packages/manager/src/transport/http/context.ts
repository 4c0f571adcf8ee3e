import type { FastifyInstance, RawServerDefault, FastifyBaseLogger } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Broker } from '../../broker/broker.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { ApiTokensService } from '../../services/api-tokens/api-tokens-service.js';
import type { ArtifactsService } from '../../services/artifacts/artifacts-service.js';
import type { AuditService } from '../../services/audit/audit-service.js';
import type { LoginThrottle } from '../../services/auth/login-throttle.js';
import type { SessionsService } from '../../services/auth/sessions-service.js';
import type { DevicesService } from '../../services/devices/devices-service.js';
import type { EnrollmentService } from '../../services/enrollment/enrollment-service.js';
import type { UsersService } from '../../services/users/users-service.js';
import type { EventBus } from '../../services/live/event-bus.js';
import type { FleetSummaryService } from '../../services/fleet/fleet-summary-service.js';
import type { ClusterStatusService } from '../../services/cluster/cluster-status.js';
import type { HistoryReader } from '../../services/history/history-reader.js';
import type { TasksService } from '../../services/tasks/tasks-service.js';
import type { GroupsService } from '../../services/groups/groups-service.js';
import type { RolloutsService } from '../../services/rollouts/rollouts-service.js';
import type { Store } from '../../store/store.js';
import type { Guard } from './auth.js';

export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

/** What route plugins may use: the services, never the store directly (except health). */
export interface RouteContext {
  users: UsersService;
  sessions: SessionsService;
  apiTokens: ApiTokensService;
  audit: AuditService;
  throttle: LoginThrottle;
  devices: DevicesService;
  enrollment: EnrollmentService;
  tasks: TasksService;
  groups: GroupsService;
  rollouts: RolloutsService;
  artifacts: ArtifactsService;
  fleet: FleetSummaryService;
  cluster: ClusterStatusService;
  history: HistoryReader;
  events: EventBus;
  broker: Broker;
  store: Store;
  metrics: Metrics;
  guard: Guard;
  /** Default lifetime of a device download URL, seconds. */
  downloadUrlTtlSec: number;
  /** MQTT URL to hand a device that reached us at `hostname`. */
  /** The broker URL for a device that called from `hostname`, over HTTPS when `secure`. */
  mqttUrlFor(hostname: string, secure: boolean): string;
}
