import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one manager process, served at /metrics. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pallas_' });
  return {
    registry,
    historyRowsWritten: new Counter({
      name: 'pallas_history_rows_written_total',
      help: 'Device history buckets written (1-minute and 15-minute, docs/history.md)',
      registers: [registry],
    }),
    devicesConnected: new Gauge({
      name: 'pallas_devices_connected',
      help: 'Devices with an open MQTT session on this manager',
      registers: [registry],
    }),
    devicesByPresence: new Gauge({
      name: 'pallas_devices',
      help: 'Devices by presence (online, unresponsive, offline), as the store holds them at scrape time; the same fleet on every manager, so aggregate with max, not sum',
      labelNames: ['presence'] as const,
      registers: [registry],
    }),
        mqttMessagesIn: new Counter({
      name: 'pallas_mqtt_messages_received_total',
      help: 'MQTT messages accepted from devices, by channel',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    mqttMessagesOut: new Counter({
      name: 'pallas_mqtt_messages_sent_total',
      help: 'MQTT messages the manager published to devices, by channel',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    mqttRejected: new Counter({
      name: 'pallas_mqtt_rejected_total',
      help: 'MQTT connections, publications and subscriptions refused, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    auditWriteErrors: new Counter({
      name: 'pallas_audit_write_errors_total',
      help: 'Audit records that could not be written (the action itself went ahead); alert on any',
      registers: [registry],
    }),
    statusPersisted: new Counter({
      name: 'pallas_status_messages_persisted_total',
      help: 'Status and presence messages written to the store (several per row when coalesced)',
      registers: [registry],
    }),
    statusRowsWritten: new Counter({
      name: 'pallas_status_rows_written_total',
      help: 'Device rows updated by the status write-behind buffer',
      registers: [registry],
    }),
    enrollments: new Counter({
      name: 'pallas_enrollments_total',
      help: 'Device enrollment attempts, by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    taskReports: new Counter({
      name: 'pallas_task_reports_total',
      help: 'Task reports from devices applied to the store, by type (progress, result, late: a result after the task was final)',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'pallas_http_request_duration_seconds',
      help: 'REST API latency, by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
