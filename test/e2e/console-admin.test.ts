/**
 * The console's security, artifact and audit views in a real browser (Debian's Chromium, driven
 * by playwright-core) against a real manager run with --require-approval and a real agent (sim
 * driver): approve a pending device, block and unblock it, rotate its credential; upload an
 * artifact with a progress bar (upload throttled by Chromium so the bar is seen moving), cancel
 * one, see a duplicate refused, deploy a VM from it, see the delete refused while that task
 * waits, delete it; the audit log shows all of it; API tokens; a viewer sees no write actions.
 * Any console error or uncaught page error fails the test. Screenshots of each view at 1280×800
 * and 390×844 go to test-results/screenshots/ (11-… to 20-…).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { Device, PageOf, Task } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
  patchFile, tarOf,
} from '@pallas/testkit';
import { expectingHttpError, launchChromium, logIn, openPage, openSection, snap, type WatchedPage } from './support/console-browser.js';

const DEVICE_NAME = 'edge-gated';

describe('web console: device security, artifacts, audit', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let browser: Browser;
  let main: WatchedPage;
  let agent: Proc | undefined;
  let deviceId = '';
  let deployTask: Task | undefined;
  const dirs = tempDir('pallas-console-admin-');
  const pages: WatchedPage[] = [];
  // 6 MiB at 1.5 MB/s: about four seconds of upload, long enough to see and photograph the bar.
  // 6 MiB that pass the manager's OVA check: a tar with a descriptor (one VM, no disks); the
  // random bytes after the end-of-archive marker are ignored by tar readers.
  const ova = tarOf([{ name: 'edge-image.ovf', data: '<Envelope><VirtualSystem id="edge-image"/></Envelope>' }]);
  const file = Buffer.concat([ova, randomBytes(6 * 1024 * 1024 - ova.length)]);
  const fileSha256 = createHash('sha256').update(file).digest('hex');

  before(async () => {
    manager = await startManagerProcess({ args: ['--require-approval', '--keepalive-sec', '5'] });
    admin = await manager.admin();
    browser = await launchChromium();
    main = await openPage(browser);
    pages.push(main);
  });
  afterEach(() => {
    for (const p of pages) assert.deepEqual(p.errors, [], 'the browser logged errors');
  });
  after(async () => {
    await browser?.close();
    await agent?.kill();
    await manager?.close();
    dirs.cleanup();
  });

  it('shows a newly enrolled device as pending and approves it; it comes online by itself', async () => {
    const { page } = main;
    await logIn(page, manager.httpUrl, 'admin', ADMIN_PASSWORD);
    const token = await createEnrollmentToken(admin, { maxUses: 1 });
    const simConfig = join(dirs.path, 'sim.json');
    writeFileSync(simConfig, JSON.stringify({ sim: { latencyMs: 300, hostname: DEVICE_NAME } }));
    agent = startAgentProcess({ managerUrl: manager.httpUrl, stateDir: join(dirs.path, 'agent'), token, args: ['--config', simConfig] });
    const pending = await waitFor('the device to enroll as pending', async () => {
      const res = await admin.get<PageOf<Device>>('/api/v1/devices?status=pending');
      return res.body.items[0];
    }, { timeoutMs: 30_000 });
    deviceId = pending.id;

    // Enrolling is not a live event (the device cannot connect yet): open the overview afresh.
    await page.goto(`${manager.httpUrl}/`);
    await page.waitForSelector('[data-stat="pending approval"] .stat-value:text("1")');
    await snap(page, '11-overview-pending');
    await page.click('[data-stat="pending approval"]');
    await page.waitForSelector(`tr[data-device-id="${deviceId}"] [data-status=pending]`);
    assert.equal(await page.inputValue('select[name=status]'), 'pending');
    assert.equal(await page.locator('tbody tr[data-device-id]').count(), 1);
    // The hypervisor filter: the sim device is there for `sim` and not for `esxi`.
    await page.selectOption('select[name=hypervisor]', 'esxi');
    await page.waitForSelector('text=No device matches');
    await page.selectOption('select[name=hypervisor]', 'sim');
    await page.waitForSelector(`tr[data-device-id="${deviceId}"]`);
    await snap(page, '12-devices-pending');

    await page.click(`tr[data-device-id="${deviceId}"] a.row-link`);
    await page.waitForSelector('[data-testid=pending-notice]');
    await snap(page, '13-device-pending');
    await page.click('.view-head button:has-text("Approve")');
    await page.waitForSelector(`dialog:has-text("Approve ${DEVICE_NAME}?")`);
    await page.click('dialog button:has-text("Approve device")');
    await page.waitForSelector('[data-testid=pending-notice]', { state: 'detached' });
    // The agent retries with backoff and connects once approved; the page hears it live.
    await page.waitForSelector('.view-head [data-presence=online]', { timeout: 90_000 });
    assert.equal(await page.locator('.view-head [data-status]').count(), 0, 'an active device shows no status badge');
  });

  it('uploads an artifact with a progress bar and its hash; cancels one; shows a duplicate refused', async () => {
    const { page, context } = main;
    await openSection(page, 'Artifacts');
    await page.waitForSelector('text=No artifacts yet.');
    // Chromium slows uploads down for this page, so the progress bar is seen moving.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1_500_000 });

    // Cancelled halfway: nothing is kept and the panel says so.
    await page.click('button:has-text("Upload artifact")');
    // The kind is said, never guessed from the file name; the picker offers files of that kind.
    assert.equal(await page.inputValue('select[name=artifact-kind]'), '', 'no kind until one is chosen');
    await page.selectOption('select[name=artifact-kind]', 'patch');
    assert.equal(await page.getAttribute('input[name=artifact-file]', 'accept'), '.tar');
    await page.setInputFiles('input[name=artifact-file]', { name: 'edge-image.ova', mimeType: 'application/octet-stream', buffer: file });
    assert.equal(await page.inputValue('select[name=artifact-kind]'), 'patch', 'the file name changed nothing');
    await page.waitForSelector('[data-testid=kind-mismatch]:has-text("does not look like a patch")');
    await page.selectOption('select[name=artifact-kind]', 'ova');
    assert.equal(await page.getAttribute('input[name=artifact-file]', 'accept'), '.ova');
    await page.waitForSelector('[data-testid=kind-mismatch]', { state: 'detached' });
    assert.equal(await page.inputValue('input[name=artifact-name]'), 'edge-image', 'the name comes from the file name');
    await page.fill('input[name=artifact-version]', '1.0');
    await page.click('section[aria-label="Upload an artifact"] button[type=submit]');
    await page.waitForSelector('[role=progressbar][aria-label="Upload progress"]');
    await page.click('button:has-text("Cancel upload")');
    await page.waitForSelector('section[aria-label="Upload an artifact"] .error-note:has-text("upload cancelled")');
    assert.equal((await admin.get<PageOf<unknown>>('/api/v1/artifacts')).body.total, 0, 'a cut upload leaves nothing');

    // The whole file: bytes, percentage and rate while it goes, then its SHA-256.
    await page.click('section[aria-label="Upload an artifact"] button[type=submit]');
    await page.waitForSelector('[data-testid=upload-progress-text]:has-text("/s")');
    const during = (await page.textContent('[data-testid=upload-progress-text]')) ?? '';
    assert.match(during, /^[\d.]+ (B|KiB|MiB) of 6 MiB · \d+ %/);
    const pct = Number(await page.getAttribute('[role=progressbar][aria-label="Upload progress"]', 'aria-valuenow'));
    assert.ok(pct < 100, `the bar is caught moving (${pct} %)`);
    await snap(page, '14-artifact-uploading');
    await page.waitForSelector('[data-testid=upload-done]', { timeout: 60_000 });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    assert.match((await page.textContent('[data-testid=upload-done]')) ?? '', new RegExp(fileSha256));
    const row = 'tr[data-artifact="edge-image 1.0"]';
    await page.waitForSelector(`${row} td.num:text("6 MiB")`);
    assert.equal(await page.getAttribute(`${row} [data-sha256]`, 'data-sha256'), fileSha256);
    assert.equal(await page.textContent(`${row} [data-sha256]`), `${fileSha256.slice(0, 12)}…`);

    // The same kind, name and version again: the manager's 409 is shown as a sentence.
    await page.click('button:has-text("Upload artifact")');
    await page.selectOption('select[name=artifact-kind]', 'ova');
    await page.setInputFiles('input[name=artifact-file]', { name: 'edge-image.ova', mimeType: 'application/octet-stream', buffer: Buffer.from('small') });
    await page.fill('input[name=artifact-version]', '1.0');
    await expectingHttpError(main, 409, async () => {
      await page.click('section[aria-label="Upload an artifact"] button[type=submit]');
      await page.waitForSelector('section[aria-label="Upload an artifact"] .error-note:has-text("already exists")');
    });
    await page.click('section[aria-label="Upload an artifact"] button:has-text("Close")');
    await page.selectOption('select[name=artifact-kind-filter]', 'patch');
    await page.waitForSelector('text=No artifacts of this kind yet.');
    await page.selectOption('select[name=artifact-kind-filter]', 'ova');
    await page.waitForSelector(row);
    await snap(page, '15-artifacts');
  });

  it('blocks the device, deploys a VM from the OVA into its queue, refuses to delete the artifact in use, unblocks, rotates', async () => {
    const { page } = main;
    await openSection(page, 'Devices');
    await page.click(`tr[data-device-id="${deviceId}"] a.row-link`);
    await page.waitForSelector('[data-testid=device-title]');

    await page.click('.view-head button:has-text("Block")');
    await page.waitForSelector(`dialog:has-text("Block ${DEVICE_NAME}?")`);
    await page.click('dialog button:has-text("Block device")');
    await page.waitForSelector('.view-head [data-status=blocked]');
    await page.waitForSelector('.view-head [data-presence=offline]', { timeout: 30_000 });

    // Blocked, so the deploy task waits in the device's queue (and keeps the artifact in use).
    await page.click('button:has-text("Deploy from OVA")');
    await page.waitForSelector('dialog select[name=deploy-artifact] option:has-text("edge-image 1.0")', { state: 'attached' });
    await page.fill('dialog input[name=deploy-name]', 'from-ova');
    await snap(page, '16-deploy-dialog');
    await page.click('dialog button:has-text("Deploy")');
    await page.waitForSelector('[data-pending-task]:has-text("from-ova") .task-status-text:has-text("device blocked")');
    deployTask = await waitFor('the deploy task', async () => (await admin.get<PageOf<Task>>(`/api/v1/tasks?deviceId=${deviceId}`)).body.items.find((t) => t.kind === 'vm.deploy'));
    const op = deployTask.operation;
    assert.ok(op.kind === 'vm.deploy' && op.name === 'from-ova' && op.source.kind === 'artifact', JSON.stringify(op));
    assert.equal(deployTask.state, 'queued');
    await snap(page, '17-device-blocked');

    await openSection(page, 'Artifacts');
    await page.click('tr[data-artifact="edge-image 1.0"] button:has-text("Delete")');
    await page.waitForSelector('dialog:has-text("Delete edge-image 1.0?")');
    await expectingHttpError(main, 409, async () => {
      await page.click('dialog button:has-text("Delete artifact")');
      await page.waitForSelector(`dialog .error-note:has-text("${deployTask!.id}")`);
    });
    assert.match((await page.textContent('dialog .error-note')) ?? '', /not finished; cancel or wait/);
    await page.click('dialog button:has-text("Cancel")');

    // Cancel the task from its page; then the artifact can go.
    await page.goto(`${manager.httpUrl}/tasks/${deployTask.id}`);
    await page.click('.content button:has-text("Cancel task")');
    await waitFor('the deploy task to be cancelled', async () => (await admin.get<Task>(`/api/v1/tasks/${deployTask!.id}`)).body.state === 'cancelled' || undefined);
    await openSection(page, 'Artifacts');
    await page.click('tr[data-artifact="edge-image 1.0"] button:has-text("Delete")');
    await page.click('dialog button:has-text("Delete artifact")');
    await page.waitForSelector('tr[data-artifact="edge-image 1.0"]', { state: 'detached' });

    await page.goto(`${manager.httpUrl}/devices/${deviceId}`);
    await page.click('.view-head button:has-text("Unblock")');
    await page.waitForSelector(`dialog:has-text("Unblock ${DEVICE_NAME}?")`);
    await page.click('dialog button:has-text("Unblock device")');
    await page.waitForSelector('.view-head [data-status]', { state: 'detached' });
    await page.click('.view-head button:has-text("Rotate credential")');
    await page.waitForSelector(`dialog:has-text("Rotate the credential of ${DEVICE_NAME}?")`);
    await page.click('dialog button:has-text("Rotate credential")');
    await page.waitForSelector('dialog', { state: 'detached' });
    // The device's recent events (admins: from the audit log) list what was just done.
    for (const action of ['device.approve', 'device.block', 'vm.deploy', 'device.unblock', 'device.rotate-credential']) {
      await page.waitForSelector(`section[aria-label="Recent events"] li[data-action="${action}"]`);
    }
    await snap(page, '18-device-security');
  });

  it('shows the actions just done in the audit log, newest first, filtered', async () => {
    const { page } = main;
    await openSection(page, 'Audit log');
    await page.waitForSelector('tr[data-action="artifact.delete"]');
    const actions = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    const order = ['device.approve', 'artifact.upload', 'device.block', 'vm.deploy', 'artifact.delete', 'device.unblock', 'device.rotate-credential'];
    const positions = order.map((a) => actions.indexOf(a));
    assert.ok(positions.every((p) => p >= 0), `every action is listed: ${actions.join(', ')}`);
    assert.deepEqual([...positions].sort((a, b) => b - a), positions, 'newest first');
    await page.fill('input[name=audit-action]', 'device.');
    await page.waitForSelector('tbody tr[data-action="device.approve"]');
    await waitFor('only device actions', async () => {
      const shown = await page.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action') ?? ''));
      return shown.length > 0 && shown.every((a) => a.startsWith('device.')) || undefined;
    });
    await page.fill('input[name=audit-actor]', 'admin');
    await page.waitForSelector('tbody tr[data-action="device.block"]');
    // The target is named, and links to the device's page.
    assert.equal(await page.textContent('tbody tr[data-action="device.block"] td.target a'), DEVICE_NAME);
    assert.equal(await page.getAttribute('tbody tr[data-action="device.block"] td.target a', 'href'), `/devices/${deviceId}`);
    await snap(page, '19-audit');
    await page.fill('input[name=audit-actor]', 'nobody-by-this-name');
    await page.waitForSelector('text=No entries match.');
  });

  it('creates an API token that is shown once, and revokes it', async () => {
    const { page } = main;
    await openSection(page, 'API tokens');
    await page.waitForSelector('text=You have no API tokens.');
    await page.click('button:has-text("Create API token")');
    await page.fill('dialog input[name=api-token-name]', 'backup script');
    await page.selectOption('dialog select[name=api-token-role]', 'viewer');
    await page.click('dialog button[type=submit]');
    const secret = (await page.textContent('[data-testid=api-token-secret]')) ?? '';
    await page.waitForSelector('tr[data-api-token="backup script"] .badge:has-text("active")');
    // The secret works as a bearer token, with the role chosen.
    const res = await fetch(`${manager.httpUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(res.status, 200);
    await snap(page, '20-api-tokens');
    await page.click('button:has-text("Done")');
    await page.click('tr[data-api-token="backup script"] button:has-text("Revoke")');
    await page.click('dialog button:has-text("Revoke token")');
    await page.waitForSelector('tr[data-api-token="backup script"] .badge:has-text("revoked")');
    const refused = await fetch(`${manager.httpUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal(refused.status, 401);
  });

  it('shows a viewer the artifacts and devices without write actions, and no audit log', async () => {
    // Something to list: an artifact uploaded through the API.
    const up = await fetch(`${manager.httpUrl}/api/v1/artifacts?kind=patch&name=fix&version=2`, {
      method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/octet-stream' }, body: patchFile('2', 'patch bytes'),
    });
    assert.equal(up.status, 201, await up.text());
    assert.equal((await admin.post('/api/v1/users', { username: 'vic', password: 'viewer-password', role: 'viewer' })).status, 201);
    const viewer = await openPage(browser);
    pages.push(viewer);
    const { page } = viewer;
    await logIn(page, manager.httpUrl, 'vic', 'viewer-password');
    assert.deepEqual(await page.locator('nav.sidenav a').allTextContents(), ['Overview', 'Devices', 'Tasks', 'Groups', 'Rollouts', 'Artifacts', 'API tokens']);
    await openSection(page, 'Artifacts');
    await page.waitForSelector('tr[data-artifact="fix 2"]');
    // Only the hash's copy button: no upload, no delete.
    assert.deepEqual(await page.locator('.content button').allTextContents(), ['Copy']);
    await snap(page, '21-viewer-artifacts');
    await page.goto(`${manager.httpUrl}/devices/${deviceId}`);
    await page.waitForSelector('[data-testid=device-title]');
    assert.deepEqual(await page.locator('.content button').allTextContents(), [], 'no approve, block, rotate, deploy');
    assert.equal(await page.locator('section[aria-label="Recent events"]').count(), 0, 'the audit log is for admins');
    await page.goto(`${manager.httpUrl}/audit`);
    await page.waitForSelector('text=The audit log needs the admin role.');
  });
});
