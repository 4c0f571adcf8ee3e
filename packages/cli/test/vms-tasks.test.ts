/** `pallas vms …` and `pallas tasks …`, in-process against the fake manager and its live stream. */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { Task } from '@pallas/protocol';
import { device, type FakeManager, startFakeManager, task as makeTask } from './fake-manager.js';
import { run, tempDir } from './helpers.js';

const DEV = '11111111-1111-4111-8111-111111111111';
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b|\r/;

let mgr: FakeManager;
let env: Record<string, string>;

before(async () => {
  mgr = await startFakeManager();
});
after(() => mgr.close());
beforeEach(async () => {
  mgr.reset();
  mgr.devices.splice(0, Infinity,
    device({
      id: DEV,
      name: 'edge-1',
      vms: [
        { id: 'vm-1', name: 'router', powerState: 'on', vcpus: 2, memoryMB: 2048, diskGB: 20, guestOs: 'Debian 12' },
        { id: 'vm-2', name: 'db', powerState: 'off', vcpus: 4, memoryMB: 8192, diskGB: 200 },
      ],
    }),
  );
  env = { PALLAS_CONFIG_DIR: await tempDir(), PALLAS_SERVER: mgr.url, PALLAS_TOKEN: 'sess-123' };
});

/** The life of a successful create, as the manager would report it. */
function createSucceeds(t: Task): void {
  // Play only once the CLI has subscribed and read the task, so that every step reaches it as an
  // event (a slow start would otherwise see a later state in its first GET: right, but not this test).
  void waitFor(() => mgr.openStreams() === 1 && mgr.called('getTask', { id: t.id })).then(() => mgr.play(t.id, [
    { state: 'sent', sentAt: new Date().toISOString() },
    { state: 'running', startedAt: new Date().toISOString() },
    { progress: { pct: 40, message: 'copying disk' } },
    { progress: { pct: 40, message: 'copying disk' } }, // repeats are not printed twice
    { progress: { pct: 90, message: 'registering' } },
    { state: 'succeeded', vmId: 'vm-3', progress: { pct: 100, message: null }, finishedAt: new Date().toISOString() },
  ]));
}

/** A task already in the fake manager, for `tasks …` commands. */
function seedTask(over: Partial<Task> = {}): Task {
  const t = makeTask({ deviceId: DEV, operation: { kind: 'vm.power', vmId: 'vm-1', action: 'off' }, ...over });
  mgr.tasks.push(t);
  return t;
}

test('vms ls: table and --json; a device by name', async () => {
  const r = await run(['vms', 'ls', 'edge-1'], { env });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^ID +NAME +POWER +VCPUS +MEMORY +DISK +GUEST OS$/);
  assert.match(lines[1]!, /^vm-1 +router +on +2 +2 GiB +20 GB +Debian 12$/);
  assert.equal(lines.at(-1), '2 VMs');
  const j = await run(['vms', 'ls', DEV, '--json'], { env });
  assert.deepEqual((JSON.parse(j.stdout) as { id: string }[]).map((v) => v.id), ['vm-1', 'vm-2']);
});

test('vms create without --wait prints the task and how to follow it; --json prints the task', async () => {
  const r = await run(['vms', 'create', 'edge-1', '--name', 'web 1', '--vcpus', '2', '--memory', '1024', '--disk', '10.5', '--network', 'lan', '--timeout', '2h'], { env });
  assert.equal(r.code, 0, r.stderr);
  const t = mgr.tasks[0]!;
  assert.deepEqual(mgr.lastCall(), { route: 'createVm', params: { id: DEV }, query: 'timeoutSec=7200' });
  assert.deepEqual(mgr.log.at(-1)?.body, { name: 'web 1', vcpus: 2, memoryMB: 1024, diskGB: 10.5, network: 'lan' });
  assert.equal(
    r.stdout,
    `Task ${t.id} queued: create VM 'web 1' (2 vCPUs, 1 GiB, 10.5 GB disk) on device 'edge-1'.\nFollow it with: pallas tasks watch ${t.id}\n`,
  );
  const j = await run(['vms', 'create', DEV, '--name', 'x', '--vcpus', '1', '--memory', '64', '--disk', '1', '--json'], { env });
  const created = JSON.parse(j.stdout) as Task;
  assert.equal(created.state, 'queued');
  assert.equal(created.kind, 'vm.create');
});

test('vms deploy sends the OVA path on the device (and --name); a relative path is a usage error', async () => {
  const r = await run(['vms', 'deploy', 'edge-1', '--ova', '/data/ova/fw.ova', '--name', 'edge-fw'], { env });
  assert.equal(r.code, 0, r.stderr);
  const t = mgr.tasks[0]!;
  assert.deepEqual(mgr.lastCall(), { route: 'deployVm', params: { id: DEV }, query: '' });
  assert.deepEqual(mgr.log.at(-1)?.body, { source: { kind: 'file', path: '/data/ova/fw.ova' }, name: 'edge-fw' });
  assert.equal(r.stdout, `Task ${t.id} queued: deploy VM 'edge-fw' from /data/ova/fw.ova on device 'edge-1'.\nFollow it with: pallas tasks watch ${t.id}\n`);
  const n = mgr.log.length;
  const bad = await run(['vms', 'deploy', 'edge-1', '--ova', 'fw.ova'], { env });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /absolute path of the OVA on the device/);
  assert.equal(mgr.log.length, n);
});

test('vms deploy --artifact sends the artifact source; exactly one of --ova and --artifact', async () => {
  const r = await run(['vms', 'deploy', 'edge-1', '--artifact', 'art_Ab-9_x'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(mgr.log.at(-1)?.body, { source: { kind: 'artifact', artifactId: 'art_Ab-9_x' } });
  assert.match(r.stdout, /deploy VM from artifact art_Ab-9_x on device 'edge-1'/);
  const n = mgr.log.length;
  for (const bad of [[], ['--ova', '/x.ova', '--artifact', 'art_a1'], ['--artifact', 'ubuntu']]) {
    const b = await run(['vms', 'deploy', 'edge-1', ...bad], { env });
    assert.equal(b.code, 2, bad.join(' '));
    assert.match(b.stderr, bad.length === 2 ? /artifact id/ : /exactly one of --ova <path on the device> or --artifact <id>/);
  }
  assert.equal(mgr.log.length, n);
});

test('vms create: bad values are usage errors before any request', async () => {
  const base = ['vms', 'create', DEV, '--vcpus', '1', '--memory', '64', '--disk', '1'];
  for (const bad of [['--name', ' lead'], ['--name', 'a/b'], ['--name', 'ok', '--timeout', 'soon'], ['--name', 'ok', '--timeout', '31d']]) {
    const r = await run([...base, ...bad], { env });
    assert.equal(r.code, 2, bad.join(' '));
    assert.match(r.stderr, /^pallas: /);
  }
  assert.equal((await run(['vms', 'create', DEV, '--name', 'x', '--vcpus', '1', '--memory', '32', '--disk', '1'], { env })).code, 2);
  assert.equal((await run(['vms', 'create', DEV, '--name', 'x'], { env })).code, 2, 'required options');
  assert.equal(mgr.log.length, 0);
});

test('vms create --wait (not a terminal): a plain line per change, no escape codes, exit 0', async () => {
  mgr.onTaskCreated = createSucceeds;
  const r = await run(['vms', 'create', 'edge-1', '--name', 'web-1', '--vcpus', '2', '--memory', '2048', '--disk', '20', '--wait'], { env });
  assert.equal(r.code, 0, r.stderr);
  const id = mgr.tasks[0]!.id;
  assert.equal(
    r.stdout,
    [
      `Task ${id} queued: create VM 'web-1' (2 vCPUs, 2 GiB, 20 GB disk) on device 'edge-1'.`,
      'queued',
      'sent',
      'running 0%',
      'running 40%  copying disk',
      'running 90%  registering',
      'succeeded 100%',
      `Task ${id} succeeded: create VM 'web-1' (2 vCPUs, 2 GiB, 20 GB disk). VM ID: vm-3.`,
      '',
    ].join('\n'),
  );
  assert.doesNotMatch(r.stdout + r.stderr, ANSI);
  assert.ok(mgr.log.some((l) => l.route === 'followEvents' && l.query === `taskId=${id}`), 'it used the live stream');
});

test('vms create --wait on a terminal redraws one line with a bar, then ends it', async () => {
  mgr.onTaskCreated = createSucceeds;
  const r = await run(['vms', 'create', DEV, '--name', 'web-1', '--vcpus', '2', '--memory', '2048', '--disk', '20', '--wait'], { env, tty: { columns: 60 } });
  const unsized = await run(['tasks', 'watch', mgr.tasks[0]!.id], { env, tty: { columns: 0 } });
  assert.equal(unsized.stdout.split('\n')[0], '\r\x1b[2K[########################] 100%  succeeded', 'a terminal reporting 0 columns is taken as 80 wide');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes('\r\x1b[2K[##########--------------]  40%  running  copying disk'), r.stdout);
  assert.ok(r.stdout.includes('\r\x1b[2K[########################] 100%  succeeded\n'));
  for (const drawn of r.stdout.split('\r\x1b[2K').slice(1)) assert.ok(drawn.split('\n')[0]!.length < 60, `fits the terminal: ${drawn}`);
});

test('tasks watch: exit 3/4/5 with the error on failed/cancelled/timed_out; the message is printed', async () => {
  const failing = seedTask({ state: 'running', progress: { pct: 10, message: 'powering off' } });
  const p = run(['tasks', 'watch', failing.id], { env });
  await waitFor(() => mgr.openStreams() === 1 && mgr.called('getTask', { id: failing.id }));
  mgr.updateTask(failing.id, { state: 'failed', error: { code: 'invalid_state', message: 'VM vm-1 is\x1b[31m locked' } });
  const r = await p;
  assert.equal(r.code, 3);
  assert.equal(r.stdout, 'running 10%  powering off\nfailed 10%  powering off\n');
  assert.equal(r.stderr, `pallas: task ${failing.id} failed: invalid_state: VM vm-1 is?[31m locked\n`);

  const cancelled = seedTask({ state: 'cancelled' });
  const c = await run(['tasks', 'watch', cancelled.id], { env });
  assert.equal(c.code, 4);
  assert.equal(c.stderr, `pallas: task ${cancelled.id} was cancelled\n`);

  const late = seedTask({ state: 'timed_out', error: { code: 'timed_out', message: 'deadline passed' }, lateResult: { outcome: 'succeeded', at: new Date().toISOString() } });
  const t = await run(['tasks', 'watch', late.id], { env });
  assert.equal(t.code, 5);
  assert.match(t.stderr, new RegExp(`^pallas: task ${late.id} timed out: its deadline .* passed: timed_out: deadline passed; the device finished it later: succeeded\\n$`));

  const missing = await run(['tasks', 'watch', 'tsk_nope'], { env });
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'pallas: task not found\n');
});

test('tasks watch --json: only the final task on stdout; the exit code still tells', async () => {
  const t = seedTask({ state: 'sent' });
  const p = run(['tasks', 'watch', t.id, '--json'], { env });
  await waitFor(() => mgr.called('getTask', { id: t.id }));
  await mgr.play(t.id, [{ state: 'running' }, { state: 'failed', error: { code: 'no_space', message: 'datastore ds1 is full' } }]);
  const r = await p;
  assert.equal(r.code, 3);
  const out = JSON.parse(r.stdout) as Task;
  assert.equal(out.state, 'failed');
  assert.equal(out.error?.code, 'no_space');
  assert.match(r.stderr, /datastore ds1 is full/);
});

test('tasks watch falls back to polling without a stream, and Ctrl-C stops watching with 130', async () => {
  mgr.sse.enabled = false;
  const t = seedTask({ state: 'queued' });
  let press!: () => void;
  let printed = '';
  const p = run(['tasks', 'watch', t.id], { env, interrupt: new Promise<void>((res) => (press = res)), onStdout: (out) => (printed = out) });
  // Pressed once the task was read and shown (polling has begun).
  await waitFor(() => printed === 'queued\n');
  press();
  const r = await p;
  assert.equal(r.code, 130);
  assert.equal(r.stdout, 'queued\n');
  assert.match(r.stderr, /^note: no live events \(.*\); polling every second\n/);
  assert.match(r.stderr, new RegExp(`pallas: stopped watching; task ${t.id} carries on`));
});

test('tasks ls: filters (device by name), table, footer and --json', async () => {
  const a = seedTask({ state: 'running', progress: { pct: 30, message: 'working' }, cancelRequested: true });
  const b = seedTask({ operation: { kind: 'vm.delete', vmId: 'vm-2' }, kind: 'vm.delete', vmId: 'vm-2', state: 'succeeded' });
  const r = await run(['tasks', 'ls', '--device', 'edge-1', '--state', 'running', '--kind', 'vm.power', '--vm', 'vm-1', '--limit', '10'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(mgr.lastCall(), { route: 'listTasks', params: {}, query: `deviceId=${DEV}&vmId=vm-1&state=running&kind=vm.power&limit=10` });
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^ID +KIND +DEVICE +VM +STATE +PROGRESS +REASON +CREATED +BY$/);
  assert.match(lines[1]!, new RegExp(`^${a.id} +vm.power +${DEV} +vm-1 +running \\(cancelling\\) +30% working +- +just now +admin$`));
  assert.equal(lines.at(-1), '1 of 1 task');
  const all = await run(['tasks', 'ls', '--json'], { env });
  assert.deepEqual((JSON.parse(all.stdout) as { items: Task[] }).items.map((t) => t.id), [b.id, a.id]);
  assert.equal((await run(['tasks', 'ls', '--state', 'done'], { env })).code, 2);
});

test('tasks ls: a REASON column says why a task failed; a late result is said plainly', async () => {
  const failed = seedTask({ state: 'failed', error: { code: 'no_space', message: 'no datastore on host edge-1 has 900 GB free for VM "big" (most free: 250 GB)' } });
  const late = seedTask({ state: 'timed_out', error: { code: 'timed_out', message: 'no result before the deadline' }, lateResult: { outcome: 'succeeded', at: new Date().toISOString() } });
  const r = await run(['tasks', 'ls'], { env });
  assert.equal(r.code, 0, r.stderr);
  const line = (id: string): string => r.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
  assert.match(line(failed.id), / failed +\S+ +no_space: no datastore on host edge-1 has 900 GB free for V… +just now/);
  assert.match(line(late.id), / timed out; the device finished it later: succeeded +/);
  const show = await run(['tasks', 'show', late.id], { env });
  assert.match(show.stdout, /^State: +timed out; the device finished it later: succeeded$/m);
});

test('tasks show: operation, state, error, late result and the timeline', async () => {
  const t = seedTask({
    state: 'timed_out',
    attempt: 2,
    retryOf: 'tsk_000001',
    createdAt: '2025-03-01T10:00:00.000Z',
    sentAt: '2025-03-01T10:00:02.000Z',
    startedAt: null,
    finishedAt: '2025-03-01T11:00:00.000Z',
    deadlineAt: '2025-03-01T11:00:00.000Z',
    error: { code: 'timed_out', message: 'no result before the deadline' },
    lateResult: { outcome: 'succeeded', at: '2025-03-01T11:05:00.000Z' },
  });
  const r = await run(['tasks', 'show', t.id], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Operation: +power off VM vm-1$/m);
  assert.match(r.stdout, /^State: +timed out; the device finished it later: succeeded$/m);
  assert.match(r.stdout, /^Error: +timed_out: no result before the deadline$/m);
  assert.match(r.stdout, /^Attempt: +2 \(retry of tsk_000001\)$/m);
  assert.match(r.stdout, /^Late result: +succeeded at 2025-03-01 11:05:00Z/m);
  assert.ok(r.stdout.endsWith(
    ['Timeline:', '  created  2025-03-01 10:00:00Z', '  sent     2025-03-01 10:00:02Z  (+2s)', '  started  -', '  finished 2025-03-01 11:00:00Z  (+3598s)', ''].join('\n'),
  ), r.stdout);
  assert.equal((JSON.parse((await run(['tasks', 'show', t.id, '--json'], { env })).stdout) as Task).id, t.id);
});

test('tasks cancel and retry (--wait follows the new attempt)', async () => {
  const queued = seedTask();
  assert.equal((await run(['tasks', 'cancel', queued.id], { env })).stdout, `Cancelled task ${queued.id}.\n`);
  const running = seedTask({ state: 'running' });
  const c = await run(['tasks', 'cancel', running.id], { env });
  assert.match(c.stdout, new RegExp(`^Cancel requested for task ${running.id} \\(running\\)`));
  const again = await run(['tasks', 'cancel', queued.id], { env });
  assert.equal(again.code, 1);
  assert.equal(again.stderr, `pallas: task ${queued.id} is already cancelled\n`);

  mgr.onTaskCreated = (t) => void mgr.play(t.id, [{ state: 'running' }, { state: 'succeeded', progress: { pct: 100, message: null } }]);
  const r = await run(['tasks', 'retry', queued.id, '--wait'], { env });
  assert.equal(r.code, 0, r.stderr);
  const retry = mgr.tasks.at(-1)!;
  assert.equal(retry.retryOf, queued.id);
  assert.match(r.stdout, new RegExp(`^Retrying task ${queued.id}: attempt 2\\.\\nTask ${retry.id} queued: power off VM vm-1\\.\\n`));
  assert.match(r.stdout, new RegExp(`\\nTask ${retry.id} succeeded: power off VM vm-1\\.\\n$`));
});

test('vms power, update and rm: VM by name or ID, confirmation for rm, nothing-to-change is a usage error', async () => {
  const p = await run(['vms', 'power', 'edge-1', 'router', 'shutdown', '--json'], { env });
  assert.equal(p.code, 0, p.stderr);
  assert.match((await run(['vms', 'power', 'edge-1', 'router', 'shutdown'], { env })).stdout, /queued: shut down VM vm-1 on device 'edge-1'\./);
  assert.deepEqual((JSON.parse(p.stdout) as Task).operation, { kind: 'vm.power', vmId: 'vm-1', action: 'shutdown' });
  assert.equal((await run(['vms', 'power', DEV, 'vm-1', 'sideways'], { env })).code, 2);
  const none = await run(['vms', 'power', DEV, 'nope', 'on'], { env });
  assert.equal(none.code, 1);
  assert.equal(none.stderr, `pallas: no VM with ID or name 'nope' on device 'edge-1' (\`pallas vms ls ${DEV}\` lists them)\n`);

  const u = await run(['vms', 'update', DEV, 'vm-2', '--vcpus', '8', '--memory', '4096', '--timeout', '10m'], { env });
  assert.equal(u.code, 0, u.stderr);
  assert.deepEqual(mgr.lastCall(), { route: 'updateVm', params: { id: DEV, vmId: 'vm-2' }, query: 'timeoutSec=600' });
  assert.deepEqual(mgr.log.at(-1)?.body, { vcpus: 8, memoryMB: 4096 });
  assert.match(u.stdout, /queued: update VM vm-2: 8 vCPUs, memory 4 GiB on device 'edge-1'\./);
  assert.equal((await run(['vms', 'update', DEV, 'vm-2'], { env })).code, 2);

  const refused = await run(['vms', 'rm', DEV, 'db'], { env });
  assert.equal(refused.code, 2);
  assert.equal(refused.stderr, `pallas: refusing to delete VM 'db' (vm-2) on device 'edge-1' without confirmation: pass --yes\n`);
  const rm = await run(['vms', 'rm', DEV, 'db', '--yes'], { env });
  assert.equal(rm.code, 0, rm.stderr);
  assert.deepEqual(mgr.lastCall(), { route: 'deleteVm', params: { id: DEV, vmId: 'vm-2' }, query: '' });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
