/**
 * The data put into every migration fixture (docs/testing.md, "Migration fixtures"): users
 * with a session and an API token, an enrollment token, devices with tags, facts and VMs,
 * tasks in several states, artifacts and audit rows, with fixed ids and known secrets so that
 * the test can log in, connect as a device and use the token after migrating.
 *
 * Rows are written as the store holds them today. At an older schema version only the tables
 * and columns that version has are written; a column that is NOT NULL without a default and
 * has no value here stops the fixture maker with a message saying where to add one.
 */
import type { Kysely } from 'kysely';
import { sampleHostFacts } from '@pallas/testkit';

export const SEED = {
  adminPassword: 'fixture-admin-password',
  operatorPassword: 'fixture-operator-password',
  /** The API token of the operator (its SHA-256 is stored). */
  apiToken: 'pat_fixtureApiToken0123456789abcdefghijklmnopqrs',
  /** The MQTT password of device `edge-a` (its SHA-256 is stored). */
  deviceSecret: 'dev_fixtureDeviceSecret0123456789abcdefghijklmno',
  /** The enrollment token (its SHA-256 is stored). */
  enrollmentToken: 'pet_fixtureEnrollToken0123456789abcdefghijklmno',
  users: { admin: '00000000-0000-4000-8000-00000000a001', operator: '00000000-0000-4000-8000-00000000a002' },
  devices: { a: '00000000-0000-4000-8000-00000000d001', b: '00000000-0000-4000-8000-00000000d002' },
} as const;

const T0 = '2026-01-02T03:04:05.000Z';
const T1 = '2026-01-02T04:00:00.000Z';
const FAR = '2036-01-01T00:00:00.000Z';

const vm = (id: string, name: string, powerState: 'on' | 'off') => ({ id, name, powerState, vcpus: 2, memoryMB: 2048, diskGB: 20, guestOs: 'linux' });

/** Rows by table, in an order that satisfies foreign keys; hashes are filled in by `seedRows`. */
function rows(hash: (s: string) => string, passwordHash: (who: 'admin' | 'operator') => string): Record<string, Array<Record<string, unknown>>> {
  const { users, devices } = SEED;
  return {
    users: [
      { id: users.admin, username: 'admin', password_hash: passwordHash('admin'), role: 'admin', created_at: T0, updated_at: T0 },
      { id: users.operator, username: 'ops-anna', password_hash: passwordHash('operator'), role: 'operator', created_at: T0, updated_at: T1 },
    ],
    sessions: [
      { id: '00000000-0000-4000-8000-00000000e001', token_hash: hash('ses_fixtureSession'), user_id: users.operator, kind: 'session', name: null, created_at: T1, expires_at: FAR },
    ],
    enrollment_tokens: [
      { id: '00000000-0000-4000-8000-00000000c001', name: 'shops', token_hash: hash(SEED.enrollmentToken), expires_at: FAR, max_uses: 50, uses: 2, revoked: 0, created_at: T0, created_by: 'admin' },
    ],
    devices: [
      {
        id: devices.a, name: 'edge-a', secret_hash: hash(SEED.deviceSecret), presence: 'offline', last_seen_at: T1, enrolled_at: T0, updated_at: T1,
        enrollment_token_id: '00000000-0000-4000-8000-00000000c001', hypervisor_kind: 'sim', agent_version: '0.1.0',
        facts: JSON.stringify(sampleHostFacts('edge-a')), vms: JSON.stringify([vm('vm-100', 'web', 'on'), vm('vm-101', 'db — ünïcode', 'off')]), status_seq: 42,
        status: 'active', pending_secret_hash: null, flags: JSON.stringify([]), last_address: '192.0.2.10',
      },
      {
        id: devices.b, name: 'edge-b', secret_hash: hash('dev_fixtureOtherDevice'), presence: 'offline', last_seen_at: null, enrolled_at: T0, updated_at: T0,
        enrollment_token_id: '00000000-0000-4000-8000-00000000c001', hypervisor_kind: null, agent_version: null, facts: null, vms: null, status_seq: 0,
        status: 'blocked', pending_secret_hash: null, flags: JSON.stringify(['credential_clone_suspected']), last_address: null,
      },
    ],
    device_tags: [
      { device_id: devices.a, tag: 'site=berlin' },
      { device_id: devices.a, tag: 'tier:1' },
      { device_id: devices.b, tag: 'site=berlin' },
    ],
    tasks: [
      {
        id: 'tsk_0fixture000001', device_id: devices.a, kind: 'vm.create', operation: JSON.stringify({ kind: 'vm.create', spec: { name: 'web', vcpus: 2, memoryMB: 2048, diskGB: 20 } }),
        vm_id: 'vm-100', state: 'succeeded', progress_pct: 100, progress_message: 'done', cancel_requested: 0, error_code: null, error_message: null,
        result_vm: JSON.stringify(vm('vm-100', 'web', 'off')), late_result: null, retry_of: null, attempt: 1, created_by: 'admin',
        created_at: T0, sent_at: T0, started_at: T0, finished_at: T1, deadline_at: FAR, updated_at: T1,
        // 011: names as they were at creation (null: a task from before 011).
        device_name: 'edge-a', vm_name: 'web', artifact_name: null, artifact_version: null,
      },
      {
        id: 'tsk_0fixture000002', device_id: devices.a, kind: 'vm.power', operation: JSON.stringify({ kind: 'vm.power', vmId: 'vm-101', action: 'on' }),
        vm_id: 'vm-101', state: 'failed', progress_pct: 10, progress_message: null, cancel_requested: 0, error_code: 'not_found', error_message: 'no VM with id "vm-101"',
        result_vm: null, late_result: null, retry_of: null, attempt: 1, created_by: 'ops-anna',
        created_at: T0, sent_at: T0, started_at: T0, finished_at: T1, deadline_at: FAR, updated_at: T1,
        // 011: names as they were at creation (null: a task from before 011).
        device_name: 'edge-a', vm_name: 'db — ünïcode', artifact_name: null, artifact_version: null,
      },
      {
        id: 'tsk_0fixture000003', device_id: devices.a, kind: 'vm.power', operation: JSON.stringify({ kind: 'vm.power', vmId: 'vm-101', action: 'on' }),
        vm_id: 'vm-101', state: 'queued', progress_pct: 0, progress_message: null, cancel_requested: 0, error_code: null, error_message: null,
        result_vm: null, late_result: null, retry_of: 'tsk_0fixture000002', attempt: 2, created_by: 'ops-anna',
        created_at: T1, sent_at: null, started_at: null, finished_at: null, deadline_at: FAR, updated_at: T1,
        // 011: names as they were at creation (null: a task from before 011).
        device_name: null, vm_name: null, artifact_name: null, artifact_version: null,
      },
      {
        id: 'tsk_0fixture000004', device_id: devices.b, kind: 'vm.delete', operation: JSON.stringify({ kind: 'vm.delete', vmId: 'vm-7' }),
        vm_id: 'vm-7', state: 'timed_out', progress_pct: 0, progress_message: null, cancel_requested: 1, error_code: null, error_message: null,
        result_vm: null, late_result: JSON.stringify({ outcome: 'succeeded', at: T1 }), retry_of: null, attempt: 1, created_by: 'admin',
        created_at: T0, sent_at: T0, started_at: null, finished_at: T1, deadline_at: T1, updated_at: T1,
        // 011: names as they were at creation (null: a task from before 011).
        device_name: 'edge-b', vm_name: null, artifact_name: null, artifact_version: null,
      },
    ],
    audit_log: [
      { id: 'aud_0fixture000001', at: T0, actor_kind: 'user', actor_id: users.admin, actor_name: 'admin', action: 'user.create', target_kind: 'user', target_id: users.operator, target_name: 'ops-anna', outcome: 'ok', ip: '127.0.0.1', detail: JSON.stringify({ role: 'operator' }) },
      { id: 'aud_0fixture000002', at: T1, actor_kind: 'anonymous', actor_id: null, actor_name: 'mallory', action: 'login.failed', target_kind: null, target_id: null, target_name: null, outcome: 'denied', ip: '198.51.100.7', detail: null },
      { id: 'aud_0fixture000003', at: T1, actor_kind: 'user', actor_id: users.operator, actor_name: 'ops-anna', action: 'device.block', target_kind: 'device', target_id: devices.b, target_name: 'edge-b', outcome: 'ok', ip: '127.0.0.1', detail: null },
      // A refused call's reason and the task a request started (detail keys read since 011).
      { id: 'aud_0fixture000004', at: T1, actor_kind: 'user', actor_id: users.operator, actor_name: 'ops-anna', action: 'vm.power', target_kind: 'vm', target_id: 'vm-101', target_name: 'db — ünïcode', outcome: 'ok', ip: '127.0.0.1', detail: JSON.stringify({ status: 202, device: devices.a, deviceName: 'edge-a', task: 'tsk_0fixture000002' }) },
      { id: 'aud_0fixture000005', at: T1, actor_kind: 'user', actor_id: users.operator, actor_name: 'ops-anna', action: 'vm.power', target_kind: 'vm', target_id: 'vm-9', target_name: null, outcome: 'failed', ip: '127.0.0.1', detail: JSON.stringify({ status: 404, device: devices.b, error: { code: 'not_found', message: 'no VM vm-9' } }) },
    ],
    api_tokens: [
      { id: '00000000-0000-4000-8000-00000000f001', name: 'ci', token_hash: hash(SEED.apiToken), user_id: users.operator, role: 'operator', created_at: T0, expires_at: null, last_used_at: T1, revoked_at: null },
    ],
    artifacts: [
      // Over 4 GiB: the size column must stay a bigint.
      { id: 'art_0fixture0ova', kind: 'ova', name: 'ubuntu', version: '24.04', size: 5_000_000_123, sha256: 'ab'.repeat(32), signature: Buffer.alloc(64, 1).toString('base64'), key_id: 'key_fixture', created_at: T0, created_by: 'admin' },
      { id: 'art_0fixture0patch', kind: 'patch', name: 'hotfix', version: '1', size: 12, sha256: 'cd'.repeat(32), signature: Buffer.alloc(64, 2).toString('base64'), key_id: 'key_fixture', created_at: T1, created_by: 'ops-anna' },
    ],
    // 006: an account with two failed guesses, not locked.
    login_throttle: [
      { throttle_key: 'a:mallory', failures: 2, window_start: T1, locked_until: '1970-01-01T00:00:00.000Z' },
    ],
    // 007: a manager that ran once (its heartbeat long stopped), the lease it held, a parked live event.
    manager_instances: [
      { id: 'm-f1x7re', hostname: 'old-host', pid: 4242, version: '0.1.0', url: null, broker: 'embedded', keys_fingerprint: 'key_fixture:00ff', started_ms: 1_700_000_000_000, heartbeat_ms: 1_700_000_100_000 },
    ],
    leases: [
      { name: 'task-deadlines', holder: 'm-f1x7re', expires_ms: 1_700_000_105_000 },
    ],
    relayed_events: [
      { id: 'fixture-event', payload: JSON.stringify({ type: 'device', device: { id: devices.a, presence: 'online', lastSeenAt: T1 } }), created_ms: 1_700_000_000_000 },
    ],
    // 009: a saved-query group, a fixed group, and a paused rollout to the fixed one.
    device_groups: [
      { id: 'grp_0fixture0query', name: 'berlin', description: 'every device in Berlin', kind: 'query', query: JSON.stringify({ tags: ['site=berlin'] }), created_by: 'admin', created_at: T0, updated_at: T0 },
      { id: 'grp_0fixture0fixed', name: 'pilot', description: null, kind: 'static', query: null, created_by: 'ops-anna', created_at: T0, updated_at: T1 },
    ],
    device_group_members: [
      { group_id: 'grp_0fixture0fixed', device_id: devices.a },
      { group_id: 'grp_0fixture0fixed', device_id: devices.b },
    ],
    rollouts: [
      {
        id: 'rol_0fixture000001', name: 'power on pilot', state: 'paused', pause_reason: 'error threshold reached', operation_kind: 'vm.power',
        operation: JSON.stringify({ kind: 'vm.power', vmId: 'vm-101', action: 'on' }), target: JSON.stringify({ groupId: 'grp_0fixture0fixed' }), membership: 'fixed',
        policy: JSON.stringify({ waves: [1, 1] }), current_wave: 0, wave_count: 2, base_failed: 0, base_finished: 0,
        created_by: 'ops-anna', created_at: T0, updated_at: T1, finished_at: null, deadline_at: FAR,
      },
    ],
    rollout_waves: [
      { rollout_id: 'rol_0fixture000001', wave: 0, size: 1, started_at: T0, gate_met_at: null },
      { rollout_id: 'rol_0fixture000001', wave: 1, size: 1, started_at: null, gate_met_at: null },
    ],
    rollout_devices: [
      { rollout_id: 'rol_0fixture000001', device_id: devices.a, wave: 0, state: 'failed', task_id: 'tsk_0fixture000002', attempts: 1, error_code: 'not_found', error_message: 'no VM with id "vm-101"', verify_until: null, updated_at: T1, finished_at: T1 },
      { rollout_id: 'rol_0fixture000001', device_id: devices.b, wave: 1, state: 'pending', task_id: null, attempts: 0, error_code: null, error_message: null, verify_until: null, updated_at: T0, finished_at: null },
    ],
    // 010: history (docs/history.md). Buckets are minutes since the epoch (29,455,440 = 2026-01-02T04:00Z, T1).
    device_history: [
      {
        device_id: devices.a, resolution: 1, bucket: 29_455_440, samples: 2, cpu_min: 10.5, cpu_max: 30.25, cpu_sum: 40.75,
        mem_used_min: 1000, mem_used_max: 1200, mem_used_sum: 2200, mem_total: 8192, ds_used_min: 250, ds_used_max: 250, ds_used_sum: 500, ds_capacity: 500,
      },
      {
        device_id: devices.a, resolution: 15, bucket: 29_455_440, samples: 2, cpu_min: null, cpu_max: null, cpu_sum: null,
        mem_used_min: null, mem_used_max: null, mem_used_sum: null, mem_total: 8192, ds_used_min: null, ds_used_max: null, ds_used_sum: null, ds_capacity: null,
      },
    ],
    device_presence_history: [
      { device_id: devices.a, at: T0, state: 'online' },
      { device_id: devices.a, at: T1, state: 'offline' },
      { device_id: devices.b, at: T0, state: 'unresponsive' },
    ],
    fleet_history: [
      { resolution: 1, metric: 'presence', bucket: 29_455_440, label: 'online', min: 0, max: 1, sum: 1, samples: 2 },
      { resolution: 15, metric: 'tasks', bucket: 29_455_440, label: 'failed/vm.power/not_found', min: 1, max: 1, sum: 1, samples: 1 },
      { resolution: 1, metric: 'enrollments', bucket: 29_455_440, label: '', min: 2, max: 2, sum: 2, samples: 1 },
    ],
    history_marks: [
      { name: 'fleet-counted', bucket: 29_455_441 },
      { name: 'fleet-rolled-up', bucket: 29_455_440 },
    ],
  };
}

/**
 * Writes the seed into a database migrated to some version: the tables and columns it has.
 * Returns what it wrote, by table.
 */
export async function insertSeed(
  db: Kysely<any>,
  hash: (s: string) => string,
  passwordHash: (who: 'admin' | 'operator') => string,
): Promise<Record<string, number>> {
  const tables = new Map((await db.introspection.getTables()).map((t) => [t.name, t]));
  const written: Record<string, number> = {};
  for (const [table, list] of Object.entries(rows(hash, passwordHash))) {
    const meta = tables.get(table);
    if (!meta) continue; // not there yet at this version
    const columns = new Set(meta.columns.map((c) => c.name));
    for (const c of meta.columns) {
      if (!c.isNullable && !c.hasDefaultValue && list.some((r) => !(c.name in r))) {
        throw new Error(`${table}.${c.name} is NOT NULL without a default and the seed has no value for it: add one to ${import.meta.url}`);
      }
    }
    for (const row of list) {
      await db.insertInto(table).values(Object.fromEntries(Object.entries(row).filter(([k]) => columns.has(k)))).execute();
    }
    written[table] = list.length;
  }
  // Nothing else may hold data that the fixture would not cover.
  const uncovered = [...tables.keys()].filter((t) => !t.startsWith('kysely_') && !(t in written));
  if (uncovered.length > 0) throw new Error(`tables without seed rows: ${uncovered.join(', ')}: add rows to ${import.meta.url}`);
  return written;
}
