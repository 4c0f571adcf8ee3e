/**
 * Issue #18 points 1, 8 and 9 in the web console, in a real browser (Debian's Chromium,
 * playwright-core) against a real manager, one `pallas-sim` device whose power operations fail
 * (`host_error`) and one device played by the test over MQTT (for a not_found failure and a
 * result that comes after the task timed out):
 * - point 1: the tasks list and a task's page name the device, the VM and the artifact, the
 *   ids secondary and selectable; devices sharing a name carry a "duplicate name" badge;
 * - point 8: a failed task says why in words once, the code secondary, and offers Retry only
 *   when it can help; a timed-out task whose result came later says so in the list and the page;
 * - point 9: the audit log names targets, shows the reason of a refused call and the state of
 *   the task a request started, has labelled filters, hides sign-ins, and exports CSV and JSON.
 * Any console error fails the test. Screenshots at 1280×800 and 390×844 go to a temporary
 * directory (printed as a diagnostic), never into the repository.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import type { Device, EnrollResponse, SignedArtifact, Task, Vm } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, BIN, createEnrollmentToken, sampleHostFacts, startManagerProcess, startNode, tarOf, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { DESKTOP, PHONE, launchChromium, logIn, openPage, openSection, type WatchedPage } from './support/console-browser.js';

const SHOTS = join(tmpdir(), `pallas-console-names-${process.pid}`);

/** Screenshots of the current view at desktop and phone size, into SHOTS (outside the repository). */
async function snap(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}-1280x800.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(100);
  await page.screenshot({ path: join(SHOTS, `${name}-390x844.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

const topic = (id: string, channel: string) => `pallas/v1/d/${id}/${channel}`;

describe('web console: names, task reasons, the audit log', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let browser: Browser;
  let main: WatchedPage;
  const dirs = tempDir('pallas-console-names-');
  let sim: Proc | undefined;
  let played: MqttClient | undefined;
  const playedId = randomUUID();
  let simId: string;
  let simVm: Vm;
  const tasks: Record<'hostError' | 'notFound' | 'late' | 'deploy', Task> = {} as never;

  const task = async (id: string): Promise<Task> => (await admin.get<Task>(`/api/v1/tasks/${id}`)).body;
  const result = (taskId: string, outcome: 'succeeded' | 'failed', extra: object = {}) =>
    played!.publishAsync(topic(playedId, 'task/result'), JSON.stringify({ taskId, outcome, finishedAt: new Date().toISOString(), ...extra }), { qos: 1 });

  before(async () => {
    manager = await startManagerProcess({ args: ['--task-sweep-ms', '200'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 10 });

    // A real agent whose host fails every power operation.
    sim = startNode(BIN.sim, ['--manager', manager.httpUrl, '--token', token, '--devices', '1', '--state-dir', join(dirs.path, 'sim'), '--fail-on', 'powerVm=host_error'], { PALLAS_LOG_LEVEL: 'warn' });
    const file = join(dirs.path, 'sim', 'device-0001', 'device.json');
    simId = await waitFor('sim device', () => existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { deviceId: string }).deviceId, { timeoutMs: 60_000 });
    const simDevice = await waitFor('sim online with VMs', async () => {
      const d = (await admin.get<Device>(`/api/v1/devices/${simId}`)).body;
      return d?.presence === 'online' && d.vms.length > 0 && d;
    }, { timeoutMs: 60_000 });
    simVm = simDevice.vms[0]!;
    await admin.patch(`/api/v1/devices/${simId}`, { name: 'shop-01' });

    // A device played here, enrolled under the same name: flagged as a duplicate.
    const enrolled = await manager.api.post<EnrollResponse>('/api/v1/enroll', { token, deviceId: playedId, facts: sampleHostFacts('shop-01') });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    const m = enrolled.body.mqtt;
    played = await mqtt.connectAsync(manager.mqttUrl, { clientId: m.clientId, username: m.username, password: m.password, clean: false, reconnectPeriod: 0 });
    await played.subscribeAsync(topic(playedId, 'cmd/#'), { qos: 1 });
    await played.publishAsync(topic(playedId, 'presence'), JSON.stringify({ state: 'online', at: new Date().toISOString() }), { qos: 1 });
    const vms: Vm[] = [{ id: 'vm-104', name: 'till-04', powerState: 'on', vcpus: 1, memoryMB: 1024, diskGB: 16, guestOs: 'linux' }];
    await played.publishAsync(topic(playedId, 'status'), JSON.stringify({ seq: 1, sentAt: new Date().toISOString(), facts: sampleHostFacts('shop-01'), vms }), { qos: 1 });
    await waitFor('played inventory', async () => (await admin.get<Device>(`/api/v1/devices/${playedId}`)).body.vms.length === 1);

    // host_error (retry helps), from the real agent.
    tasks.hostError = (await admin.post<Task>(`/api/v1/devices/${simId}/vms/${simVm.id}/power`, { action: 'reset' })).body;
    // not_found (retry cannot help), and a result after the deadline, from the played device.
    tasks.notFound = (await admin.post<Task>(`/api/v1/devices/${playedId}/vms/vm-104/power`, { action: 'off' })).body;
    tasks.late = (await admin.post<Task>(`/api/v1/devices/${playedId}/vms/vm-104/power?timeoutSec=1`, { action: 'reset' })).body;
    // An artifact task: named by the artifact's name and version.
    const bytes = tarOf([{ name: 'pos.ovf', data: '<Envelope><VirtualSystem id="pos"/></Envelope>' }]);
    const up = await fetch(`${manager.httpUrl}/api/v1/artifacts?kind=ova&name=pos-image&version=3.2`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.token!}`, 'content-type': 'application/octet-stream' }, body: bytes,
    });
    assert.equal(up.status, 201);
    const art = (await up.json()) as SignedArtifact;
    tasks.deploy = (await admin.post<Task>(`/api/v1/devices/${playedId}/vms/deploy`, { source: { kind: 'artifact', artifactId: art.id }, name: 'pos-2' })).body;

    await result(tasks.notFound.id, 'failed', { error: { code: 'not_found', message: 'no VM with id "vm-104" on this host' } });
    await waitFor('late task timed out', async () => (await task(tasks.late.id)).state === 'timed_out');
    await result(tasks.late.id, 'succeeded', { vm: vms[0] });
    await waitFor('host_error', async () => (await task(tasks.hostError.id)).state === 'failed', { timeoutMs: 30_000 });
    await waitFor('not_found', async () => (await task(tasks.notFound.id)).state === 'failed');
    await waitFor('late result', async () => (await task(tasks.late.id)).lateResult?.outcome === 'succeeded');
    // A refused call, for the audit log's reason.
    assert.equal((await admin.delete('/api/v1/users/no-such-user')).status, 404);

    browser = await launchChromium();
    main = await openPage(browser);
    await logIn(main.page, manager.httpUrl, 'admin', ADMIN_PASSWORD);
  });
  afterEach(() => assert.deepEqual(main.errors, [], 'the browser logged errors'));
  after(async () => {
    await browser?.close();
    await played?.endAsync();
    await sim?.kill();
    await manager?.close();
    dirs.cleanup();
    console.log(`# screenshots: ${SHOTS}`);
  });

  it('names devices, VMs and artifacts in the tasks list; a late result says so', async () => {
    const { page } = main;
    await openSection(page, 'Tasks');
    const row = (id: string) => page.locator(`tr[data-task-id="${id}"]`);
    await row(tasks.hostError.id).waitFor();
    assert.equal(await row(tasks.hostError.id).locator('td').nth(1).innerText(), 'shop-01');
    assert.match(await row(tasks.hostError.id).locator('td').first().innerText(), new RegExp(`Reset ${simVm.name}`));
    assert.match(await row(tasks.notFound.id).locator('td').first().innerText(), /Power off till-04/);
    assert.match(await row(tasks.deploy.id).locator('td').first().innerText(), /Deploy VM pos-2 from pos-image 3\.2/);
    const text = await page.locator('table').innerText();
    assert.ok(!text.includes(simId) && !text.includes(playedId), 'no device UUID in the list');
    for (const t of Object.values(tasks)) {
      assert.ok(!/\bvm-10\d\b/.test(await row(t.id).locator('td').first().innerText()), 'the operation names the VM, not its id');
    }
    await row(tasks.late.id).locator('[data-late=succeeded]').waitFor();
    assert.match(await row(tasks.late.id).innerText(), /timed out\s+the device finished it later: succeeded/);
    await snap(page, 'names-01-tasks');
    // The device filter takes a name (every device of that name) or an id.
    await page.fill('input[name=task-device]', 'no-such-shop');
    await page.locator('p.empty:has-text("No tasks.")').waitFor();
    await page.fill('input[name=task-device]', 'shop-01');
    await row(tasks.late.id).waitFor();
    assert.equal(await page.locator('tr[data-task-id]').count(), Object.keys(tasks).length);
    await page.fill('input[name=task-device]', '');
  });

  it("a failed task says why in words, the code secondary; Retry only when it can help", async () => {
    const { page } = main;
    await page.click(`tr[data-task-id="${tasks.hostError.id}"] a.row-link`);
    const error = page.locator('.task-error[data-error-code=host_error]');
    await error.waitFor();
    assert.match(await error.locator('.task-error-words').innerText(), /^The hypervisor failed the operation for a reason of its own: /);
    assert.equal(await page.locator('.task-error').count(), 1, 'the error once');
    const message = (await task(tasks.hostError.id)).error!.message;
    assert.equal((await page.locator('main, .view').first().innerText()).split(message).length - 1, 1, `"${message}" shown once`);
    await page.locator('button:has-text("Retry")').waitFor();
    assert.match(await page.locator('dl.facts').innerText(), /shop-01/);
    assert.equal(await page.locator(`dl.facts code.id-text[data-id="${simId}"]`).count(), 1, 'the device id, secondary');
    assert.equal(await page.locator(`dl.facts code.id-text[data-id="${simVm.id}"]`).count(), 1, 'the VM id, secondary');
    await snap(page, 'names-02-task-host-error');

    await page.goto(`${manager.httpUrl}/tasks/${tasks.notFound.id}`);
    await page.locator('.task-error[data-error-code=not_found]').waitFor();
    assert.match(await page.locator('.task-error-words').innerText(), /^No such VM on the device/);
    await page.locator('[data-testid=no-retry]').waitFor();
    assert.equal(await page.locator('button:has-text("Retry")').count(), 0, 'no Retry for not_found');
    await snap(page, 'names-03-task-not-found');

    await page.goto(`${manager.httpUrl}/tasks/${tasks.late.id}`);
    const late = page.locator('[data-testid=late-result]');
    await late.waitFor();
    assert.match(await late.innerText(), /^Timed out; the device finished it later: succeeded/);
    assert.match(await page.locator('.task-status-text').innerText(), /Timed out; the device finished it later: succeeded/);
    assert.equal(await page.locator('button:has-text("Retry")').count(), 0, 'it succeeded in the end: nothing to retry');
    await snap(page, 'names-04-task-late');

    await page.goto(`${manager.httpUrl}/tasks/${tasks.deploy.id}`);
    await page.locator('dl.facts >> text=pos-image 3.2').waitFor();
  });

  it('badges devices that share a name', async () => {
    const { page } = main;
    await openSection(page, 'Devices');
    await page.locator('[data-flag=duplicate_name]').nth(1).waitFor();
    assert.equal(await page.locator('[data-flag=duplicate_name]').count(), 2);
    await snap(page, 'names-05-devices-duplicate');
    await page.goto(`${manager.httpUrl}/devices/${playedId}`);
    await page.locator('header [data-flag=duplicate_name]').waitFor();
  });

  it('the audit log: names, reasons, task outcomes, labelled filters, hide sign-ins, export', async () => {
    const { page } = main;
    await openSection(page, 'Audit log');
    const power = page.locator('tr[data-action="vm.power"]').filter({ has: page.locator('[data-task-state=failed]') }).first();
    await power.waitFor();
    assert.match(await power.locator('td.target').innerText(), /vm\s+(till-04|[a-z]+-\d\d) on shop-01/);
    assert.match(await power.locator('td.outcome').innerText(), /ok\s+task\s+failed/);
    const refused = page.locator('tr[data-action="user.delete"][data-outcome=failed]');
    assert.match(await refused.locator('[data-reason=not_found]').innerText(), /no-such-user/);
    const late = page.locator('tr[data-action="vm.power"] [data-task-state=timed_out] [data-late=succeeded]');
    assert.equal(await late.count(), 1);

    // Labelled filters: every field is found by its label.
    for (const label of ['Actor', 'Action', 'Target', 'Hide sign-ins']) assert.equal(await page.getByLabel(label, { exact: true }).count(), 1, label);
    assert.equal(await page.locator('label.filter:has(span:text-is("Outcome")) select[name=audit-outcome]').count(), 1, 'Outcome');
    await page.locator('tr[data-action="login.ok"]').first().waitFor();
    await page.getByLabel('Hide sign-ins', { exact: true }).check();
    await page.waitForURL(/hideLogins=1/);
    await waitFor('sign-ins hidden', async () => (await page.locator('tr[data-action="login.ok"]').count()) === 0 && (await page.locator('tr[data-action="vm.power"]').count()) > 0);
    await page.fill('input[name=audit-target]', 'shop-01');
    await page.waitForURL(/target=shop-01/);
    await waitFor('target by name', async () => {
      const rows = page.locator('tbody tr td.target');
      const targets: string[] = [];
      for (let i = 0; i < (await rows.count()); i++) targets.push(await rows.nth(i).innerText());
      return targets.length > 0 && targets.every((t) => t.includes('shop-01')) && targets.some((t) => t.startsWith('device'));
    });
    await snap(page, 'names-06-audit');

    const csvHref = await page.getAttribute('[data-testid=export-csv]', 'href');
    assert.match(csvHref!, /^\/api\/v1\/audit\/export\?.*target=shop-01/);
    assert.match(csvHref!, /exclude=login\.%2Clogout/);
    const csv = await page.request.get(`${manager.httpUrl}${csvHref}`);
    assert.equal(csv.status(), 200);
    const lines = (await csv.text()).trimEnd().split('\r\n');
    assert.match(lines[0]!, /^id,at,actor_kind,/);
    assert.ok(lines.length > 1 && lines.slice(1).every((l) => l.includes('shop-01')), lines.join('\n'));
    const jsonHref = await page.getAttribute('[data-testid=export-json]', 'href');
    const json = await page.request.get(`${manager.httpUrl}${jsonHref}`);
    assert.equal(json.status(), 200);
    assert.equal(((await json.json()) as unknown[]).length, lines.length - 1);
  });
});
