/** PallasClient's VM and task calls, the live event stream and watchTask, against the fake manager. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import type { Task } from '@pallas/protocol';
import { PallasClient, type StreamedEvent } from '../src/client.js';
import { ApiRequestError } from '../src/errors.js';
import { watchTask } from '../src/watch.js';
import { device, type FakeManager, startFakeManager, VALID_TOKEN } from './fake-manager.js';

const DEV = '11111111-1111-4111-8111-111111111111';
const VM = { id: 'vm-1', name: 'router', powerState: 'off', vcpus: 2, memoryMB: 2048, diskGB: 20 } as const;

let mgr: FakeManager;
let client: PallasClient;

before(async () => {
  mgr = await startFakeManager();
  client = new PallasClient({ server: mgr.url, token: VALID_TOKEN });
});
after(() => mgr.close());
beforeEach(() => {
  mgr.reset();
  mgr.devices.splice(0, Infinity, device({ id: DEV, name: 'edge-1', vms: [{ ...VM }] }));
});

/** Collect events until `until` says stop (the loop then closes the stream). */
async function collect(it: AsyncIterable<StreamedEvent>, until: (seen: StreamedEvent[]) => boolean): Promise<StreamedEvent[]> {
  const seen: StreamedEvent[] = [];
  for await (const e of it) {
    seen.push(e);
    if (until(seen)) break;
  }
  return seen;
}

const taskIds = (events: StreamedEvent[]): string[] => events.map((e) => (e.type === 'task' ? `${e.task.id}:${e.task.state}` : e.type));

test('VM calls send the documented method, path, query and body and return the task', async () => {
  assert.deepEqual(await client.listVms(DEV), [VM]);
  const spec = { name: 'web-1', vcpus: 2, memoryMB: 1024, diskGB: 10.5, network: 'lan' };
  const created = await client.createVm(DEV, spec, { timeoutSec: 600 });
  assert.equal(created.state, 'queued');
  assert.deepEqual(created.operation, { kind: 'vm.create', spec });
  assert.deepEqual(mgr.log.at(-1), { line: `POST /api/v1/devices/${DEV}/vms?timeoutSec=600`, auth: `Bearer ${VALID_TOKEN}`, body: spec, lastEventId: undefined });

  await client.powerVm(DEV, 'vm/1', 'shutdown');
  assert.equal(mgr.log.at(-1)?.line, `POST /api/v1/devices/${DEV}/vms/vm%2F1/power`);
  assert.deepEqual(mgr.log.at(-1)?.body, { action: 'shutdown' });
  await client.updateVm(DEV, 'vm-1', { vcpus: 4 }, { timeoutSec: 60 });
  assert.equal(mgr.log.at(-1)?.line, `PATCH /api/v1/devices/${DEV}/vms/vm-1?timeoutSec=60`);
  const del = await client.deleteVm(DEV, 'vm-1');
  assert.equal(mgr.log.at(-1)?.line, `DELETE /api/v1/devices/${DEV}/vms/vm-1`);
  assert.deepEqual(del.operation, { kind: 'vm.delete', vmId: 'vm-1' });
});

test('task calls: list with filters (newest first), get, cancel, retry and their 409s', async () => {
  const a = await client.createVm(DEV, { name: 'a', vcpus: 1, memoryMB: 64, diskGB: 1 });
  const b = await client.deleteVm(DEV, 'vm-1');
  const page = await client.listTasks({ deviceId: DEV, kind: 'vm.delete', state: 'queued', limit: 5 });
  assert.equal(mgr.log.at(-1)?.line, `GET /api/v1/tasks?deviceId=${DEV}&kind=vm.delete&state=queued&limit=5`);
  assert.deepEqual(page.items.map((t) => t.id), [b.id]);
  assert.deepEqual((await client.listTasks()).items.map((t) => t.id), [b.id, a.id]);
  assert.equal((await client.getTask(a.id)).id, a.id);

  const cancelled = await client.cancelTask(a.id);
  assert.equal(cancelled.state, 'cancelled');
  await assert.rejects(client.cancelTask(a.id), (e: unknown) => e instanceof ApiRequestError && e.status === 409 && e.code === 'task_final');
  const retry = await client.retryTask(a.id);
  assert.equal(retry.retryOf, a.id);
  assert.equal(retry.attempt, 2);
  assert.equal(mgr.log.at(-1)?.line, `POST /api/v1/tasks/${a.id}/retry`);
  await assert.rejects(client.retryTask(b.id), (e: unknown) => e instanceof ApiRequestError && e.status === 409);
});

test('openEvents: filtered live events with multi-line data, then Last-Event-ID after a dropped connection', async () => {
  const t = await client.deleteVm(DEV, 'vm-1');
  const other = await client.createVm(DEV, { name: 'x', vcpus: 1, memoryMB: 64, diskGB: 1 });
  const stream = await client.openEvents({ taskId: t.id }, { retryMs: 10 });
  assert.match(mgr.log.at(-1)!.line, new RegExp(`^GET /api/v1/events\\?taskId=${t.id}$`));
  const seen = collect(stream, (s) => s.some((e) => e.type === 'task' && e.task.state === 'succeeded'));

  mgr.updateTask(other.id, { state: 'sent' }); // filtered out by the server
  mgr.updateTask(t.id, { state: 'sent' });
  await waitFor(() => mgr.openStreams() === 1);
  // Drop the connection, then publish while the client is away: it must get it by replay.
  await new Promise((r) => setTimeout(r, 20));
  mgr.dropStreams();
  mgr.updateTask(t.id, { state: 'running', progress: { pct: 50, message: 'deleting' } });
  await waitFor(() => mgr.openStreams() === 1);
  mgr.updateTask(t.id, { state: 'succeeded' });

  assert.deepEqual(taskIds(await seen), [`${t.id}:sent`, `${t.id}:running`, `${t.id}:succeeded`]);
  const reconnect = mgr.log.filter((l) => l.line.startsWith('GET /api/v1/events')).at(-1);
  // Events 1-3 were the two creations and the other task's change, which this stream never saw.
  assert.equal(reconnect?.lastEventId, '4', 'resumed after the last event it saw');
  await waitFor(() => mgr.openStreams() === 0); // leaving the loop closed the connection
});

test('openEvents: reconnecting without any event id yields reset; the signal ends iteration quietly', async () => {
  const ac = new AbortController();
  const stream = await client.openEvents({}, { signal: ac.signal, retryMs: 10 });
  const seen: StreamedEvent[] = [];
  const done = (async () => {
    for await (const e of stream) {
      seen.push(e);
      if (e.type === 'reset') ac.abort();
    }
  })();
  await waitFor(() => mgr.openStreams() === 1);
  mgr.dropStreams();
  await done;
  assert.deepEqual(seen, [{ type: 'reset' }]);
});

test('the request timeout bounds connecting only, not how long the stream stays open', async () => {
  const t = await client.deleteVm(DEV, 'vm-1');
  const quick = new PallasClient({ server: mgr.url, token: VALID_TOKEN, timeoutMs: 30 });
  const stream = await quick.openEvents({ taskId: t.id }, { retryMs: 10 });
  setTimeout(() => mgr.updateTask(t.id, { state: 'succeeded' }), 100);
  assert.deepEqual(taskIds(await collect(stream, () => true)), [`${t.id}:succeeded`]);
  assert.equal(mgr.log.filter((l) => l.line.startsWith('GET /api/v1/events')).length, 1, 'never reconnected');
});

test('openEvents rejects when the stream cannot be opened (404, or not an event stream)', async () => {
  mgr.sse.enabled = false;
  await assert.rejects(client.openEvents({ taskId: 'tsk_1' }), (e: unknown) => e instanceof ApiRequestError && e.status === 404);
  await assert.rejects(new PallasClient({ server: mgr.url }).openEvents(), (e: unknown) => e instanceof ApiRequestError && e.status === 401);
  const html = createServer((_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>'));
  await new Promise<void>((r) => html.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(html.address() as AddressInfo).port}`;
    await assert.rejects(new PallasClient({ server: url }).openEvents(), /did not answer with an event stream/);
  } finally {
    await new Promise<void>((r) => html.close(() => r()));
  }
});

test('a server that keeps closing the stream at once is given up on, with growing delays', async () => {
  const opened: number[] = [];
  const srv = createServer((_q, res) => {
    opened.push(Date.now());
    res.writeHead(200, { 'content-type': 'text/event-stream' }).end('retry: 10\n: bye\n\n');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const c = new PallasClient({ server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
    const stream = await c.openEvents({}, { maxReconnects: 3 });
    await assert.rejects(collect(stream, () => false), /keeps closing/);
    assert.equal(opened.length, 4, 'the first connection and 3 reconnects');
    const gaps = opened.slice(1).map((t, i) => t - opened[i]!);
    assert.ok(gaps[2]! >= 35 && gaps[2]! > gaps[0]!, `delays grow: ${gaps.join(', ')}`);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('a UTF-8 character split across network chunks arrives whole', async () => {
  const bytes = Buffer.from('event: vms\ndata: {"type":"vms","deviceId":"d","vms":[{"name":"café-東"}]}\n\n');
  const cut = bytes.indexOf(Buffer.from('東')) + 1;
  const srv = createServer((_q, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(bytes.subarray(0, cut));
    setTimeout(() => res.write(bytes.subarray(cut)), 10);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const c = new PallasClient({ server: `http://127.0.0.1:${(srv.address() as AddressInfo).port}` });
    const [e] = await collect(await c.openEvents(), () => true);
    assert.deepEqual(e, { type: 'vms', deviceId: 'd', vms: [{ name: 'café-東' }] });
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('watchTask: already final → no waiting; live progress; polling when there is no stream', async () => {
  const done = await client.deleteVm(DEV, 'vm-1');
  mgr.updateTask(done.id, { state: 'failed', error: { code: 'invalid_state', message: 'VM vm-1 is on' } });
  assert.equal((await watchTask(client, done.id)).state, 'failed');

  const live = await client.powerVm(DEV, 'vm-1', 'on');
  const states: string[] = [];
  const watching = watchTask(client, live.id, { onUpdate: (t) => states.push(`${t.state}:${t.progress.pct}`) });
  await waitFor(() => mgr.log.some((l) => l.line === `GET /api/v1/tasks/${live.id}`));
  await mgr.play(live.id, [{ state: 'sent' }, { state: 'running' }, { progress: { pct: 60, message: null } }, { state: 'succeeded', progress: { pct: 100, message: null } }]);
  assert.equal((await watching).state, 'succeeded');
  assert.deepEqual(states, ['queued:0', 'sent:0', 'running:0', 'running:60', 'succeeded:100']);

  mgr.sse.enabled = false;
  const polled = await client.powerVm(DEV, 'vm-1', 'off');
  let fellBack: unknown;
  const p = watchTask(client, polled.id, { pollMs: 10, onFallback: (e) => (fellBack = e) });
  setTimeout(() => mgr.updateTask(polled.id, { state: 'timed_out' }), 30);
  const final: Task = await p;
  assert.equal(final.state, 'timed_out');
  assert.ok(fellBack instanceof ApiRequestError);
  assert.ok(mgr.log.filter((l) => l.line === `GET /api/v1/tasks/${polled.id}`).length >= 2, 'it polled');
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
