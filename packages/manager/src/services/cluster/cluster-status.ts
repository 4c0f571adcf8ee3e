import type { ClusterStatus } from '@pallas/protocol';
import type { Store } from '../../store/store.js';
import type { Leases } from './leases.js';
import type { ManagerInstances } from './manager-instances.js';

interface Deps {
  store: Store;
  instances: ManagerInstances;
  leases: Leases;
  brokerKind: string;
  brokerHealth: () => { ok: boolean; detail?: string };
}

/** What `GET /api/v1/cluster` and `pallas cluster` show. */
export class ClusterStatusService {
  readonly #deps: Deps;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  async status(): Promise<ClusterStatus> {
    const { store, instances, leases, brokerKind, brokerHealth } = this.#deps;
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      answeredBy: instances.id,
      database: store.dialect,
      broker: { kind: brokerKind, ...brokerHealth() },
      managers: (await instances.list()).map((m) => ({
        id: m.id, hostname: m.hostname, pid: m.pid, version: m.version, broker: m.broker,
        startedAt: iso(m.startedMs), lastHeartbeatAt: iso(m.heartbeatMs), alive: m.alive,
      })),
      leases: (await leases.holders()).map((l) => ({ name: l.name, holder: l.holder, expiresAt: iso(l.expiresMs) })),
    };
  }
}
