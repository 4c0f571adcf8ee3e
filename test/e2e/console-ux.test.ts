/**
 * The console's guards and reach (issue #18, points 4, 5, 6 and 12) in a real browser (Debian's
 * Chromium, driven by playwright-core) against a real manager process and two real agents (sim
 * driver):
 * - 4: power off, reset and shut down of a running VM ask first in a labelled modal dialog that
 *   holds focus and closes on Escape without sending anything; deleting a VM wants its name
 *   typed; the decommission dialog lists the device's queued task and names its VM;
 * - 5: a pasted 300-character name is kept whole and refused with the limit in words (nothing is
 *   sent); names of 80 and 255 characters without a space wrap or stop at two lines, with the
 *   full name in a title, and the VM table, recent tasks and tasks list keep every column on
 *   screen at 1280×800 and 390×844;
 * - 6: a second tab and a ctrl-clicked device open logged in from the cookie session, a change
 *   made there still needs the CSRF header, and a logout in one tab ends the other;
 * - 12: a title per view, a skip link, a live region announcing the user's task progress and a
 *   device going offline, labelled filters, and a menu button instead of a sideways menu on a
 *   390 px phone.
 * Any console error or page error fails the test. Screenshots `ux-01…` at both sizes go to
 * test-results/screenshots/ (ignored by git).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import type { Device, PageOf, Task } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { DESKTOP, PHONE, expectingHttpError, launchChromium, logIn, openPage, openSection, snap, type WatchedPage } from './support/console-browser.js';

const DEVICE = 'edge-ux';
const DOOMED = 'edge-ux-gone';
/** The longest VM name (80) and device name (255), without a space to break at. */
const LONG_VM = `vm-${'x'.repeat(77)}`;
const LONG_DEVICE = `site-${'y'.repeat(250)}`;

/** Polls `probe` from the test (the page's CSP forbids the string evaluation waitForFunction needs). */
async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  return waitFor(what, probe, { timeoutMs, intervalMs: 100 });
}

/** The right edge of an element, in CSS pixels from the viewport's left. */
async function rightEdge(locator: Locator): Promise<number> {
  const box = await locator.boundingBox();
  assert.ok(box, 'the element is laid out');
  return box.x + box.width;
}

async function taskDone(api: Api, task: Task): Promise<Task> {
  return until(`task ${task.kind} to finish`, async () => {
    const t = (await api.get<Task>(`/api/v1/tasks/${task.id}`)).body;
    return t.state === 'succeeded' ? t : t.state === 'failed' || t.state === 'timed_out' ? assert.fail(`task ${t.id} ${t.state}`) : undefined;
  }, 30_000);
}

describe('web console: confirmations, long names, one login across tabs, accessibility', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let browser: Browser;
  let main: WatchedPage;
  const agents = new Map<string, Proc>();
  const ids = new Map<string, string>();
  const dirs = tempDir('pallas-console-ux-');
  const pages: WatchedPage[] = [];

  const vmOf = async (device: string, name: string) => (await admin.get<Device>(`/api/v1/devices/${ids.get(device)}`)).body.vms.find((v) => v.name === name);
  const tasksOf = async (device: string) => (await admin.get<PageOf<Task>>(`/api/v1/tasks?deviceId=${ids.get(device)}&limit=100`)).body;

  before(async () => {
    manager = await startManagerProcess({ args: ['--keepalive-sec', '5', '--status-interval-sec', '30'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 2 });
    for (const name of [DEVICE, DOOMED]) {
      const simConfig = join(dirs.path, `${name}.json`);
      writeFileSync(simConfig, JSON.stringify({ sim: { latencyMs: 400, hostname: name } }));
      agents.set(name, startAgentProcess({ managerUrl: manager.httpUrl, stateDir: join(dirs.path, name), token, args: ['--config', simConfig] }));
    }
    await until('both devices online', async () => {
      const list = (await admin.get<PageOf<Device>>('/api/v1/devices?presence=online')).body.items;
      for (const d of list) ids.set(d.name, d.id);
      return list.length === 2;
    }, 30_000);
    browser = await launchChromium();
    main = await openPage(browser);
    pages.push(main);
  });
  afterEach(() => {
    for (const p of pages) assert.deepEqual(p.errors, [], 'the browser logged errors');
  });
  after(async () => {
    await browser?.close();
    await Promise.all([...agents.values()].map((a) => a.kill()));
    await manager?.close();
    dirs.cleanup();
  });

  it('12: a title per view, a skip link, labelled filters', async () => {
    const { page } = main;
    await page.goto(`${manager.httpUrl}/`);
    assert.equal(await page.title(), 'Log in · Pallas');
    await logIn(page, manager.httpUrl, 'admin', ADMIN_PASSWORD);
    await until('the overview title', async () => (await page.title()) === 'Overview · Pallas');
    await openSection(page, 'Devices');
    await until('the devices title', async () => (await page.title()) === 'Devices · Pallas');
    await page.click(`tbody tr[data-device-id="${ids.get(DEVICE)}"] a.row-link`);
    await page.waitForSelector('[data-testid=device-title]');
    await until('the device title', async () => (await page.title()) === `${DEVICE} · Devices · Pallas`);
    await openSection(page, 'Audit log');
    await until('the audit title', async () => (await page.title()) === 'Audit log · Pallas');

    // The audit filters have visible labels that name them (not only placeholders).
    await page.getByLabel('Actor').fill('admin');
    await page.waitForSelector('tr[data-action="login.ok"]');
    assert.equal(await page.getByLabel('Action').getAttribute('name'), 'audit-action');
    assert.equal(await page.getByLabel('Target', { exact: true }).getAttribute('name'), 'audit-target');
    assert.equal(await page.getByLabel('Outcome').getAttribute('name'), 'audit-outcome');
    await snap(page, 'ux-01-audit-labelled-filters');
    await openSection(page, 'Tasks');
    assert.equal(await page.getByLabel('State').getAttribute('name'), 'task-state');
    assert.equal(await page.getByLabel('Operation').getAttribute('name'), 'task-kind');

    // A fresh load: the first Tab reaches the skip link, which moves focus to the content.
    await page.goto(`${manager.httpUrl}/tasks`);
    await page.waitForSelector('h1:text("Tasks")');
    await page.keyboard.press('Tab');
    await page.waitForSelector('.skip-link:focus');
    await snap(page, 'ux-02-skip-link');
    await page.keyboard.press('Enter');
    await page.waitForSelector('main#content:focus');
  });

  it('12: a menu button instead of a sideways-scrolling menu on a 390 px phone', async () => {
    const { page } = main;
    await page.setViewportSize(PHONE);
    try {
      await page.goto(`${manager.httpUrl}/devices`);
      await page.waitForSelector('h1:text("Devices")');
      const button = page.getByRole('button', { name: 'Menu' });
      assert.equal(await button.getAttribute('aria-expanded'), 'false');
      assert.equal(await page.isVisible('nav.sidenav'), false, 'the menu is folded');
      // Nothing sticks out sideways: the top bar's last button is inside the screen.
      assert.ok(await rightEdge(page.locator('.user-box button:has-text("Log out")')) <= PHONE.width);
      await button.click();
      assert.equal(await button.getAttribute('aria-expanded'), 'true');
      await page.waitForSelector('nav.sidenav a:has-text("Audit log")');
      for (const link of await page.locator('nav.sidenav a').all()) assert.ok(await rightEdge(link) <= PHONE.width, 'each menu entry is on screen');
      await snap(page, 'ux-03-phone-menu-open');
      await page.setViewportSize(PHONE); // snap() went back to desktop size
      await page.click('nav.sidenav a:has-text("Tasks")');
      await page.waitForSelector('h1:text("Tasks")');
      assert.equal(await button.getAttribute('aria-expanded'), 'false', 'choosing a section folds the menu');
      // Escape folds it too, and gives focus back to the button.
      await button.click();
      await page.keyboard.press('Escape');
      assert.equal(await button.getAttribute('aria-expanded'), 'false');
      await page.waitForSelector('.menu-button:focus');
    } finally {
      await page.setViewportSize(DESKTOP);
    }
  });

  it('4: power off, reset and shut down ask first in a labelled dialog; Escape sends nothing', async () => {
    const { page } = main;
    const deviceId = ids.get(DEVICE)!;
    await taskDone(admin, (await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, { name: 'ux-vm', vcpus: 1, memoryMB: 256, diskGB: 1 })).body);
    const vm = (await vmOf(DEVICE, 'ux-vm'))!;
    await taskDone(admin, (await admin.post<Task>(`/api/v1/devices/${deviceId}/vms/${vm.id}/power`, { action: 'on' })).body);
    await page.goto(`${manager.httpUrl}/devices/${deviceId}`);
    const row = 'tr[data-vm-name="ux-vm"]';
    await page.waitForSelector(`${row}[data-power=on]`);
    const powerTasks = async () => (await tasksOf(DEVICE)).items.filter((t) => t.kind === 'vm.power').length;
    const before = await powerTasks();

    // Power off: a modal dialog named by its title, focus inside it, Escape cancels.
    await page.click(`${row} button:has-text("Power off")`);
    const dialog = page.getByRole('dialog', { name: 'Power off ux-vm?' });
    await dialog.waitFor();
    assert.match(await dialog.textContent() ?? '', /cut at once/);
    assert.equal(await page.locator('dialog :focus').count(), 1, 'focus is in the dialog');
    await snap(page, 'ux-04-confirm-power-off');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    // Shut down: the Cancel button cancels too.
    await page.click(`${row} button:has-text("Shut down")`);
    await page.getByRole('dialog', { name: 'Shut down ux-vm?' }).getByRole('button', { name: 'Cancel' }).click();
    await page.waitForTimeout(500);
    assert.equal(await powerTasks(), before, 'nothing was sent');
    assert.equal((await vmOf(DEVICE, 'ux-vm'))?.powerState, 'on');

    // Reset, confirmed: the task runs.
    await page.click(`${row} button:has-text("Reset")`);
    await page.getByRole('dialog', { name: 'Reset ux-vm?' }).getByRole('button', { name: 'Reset' }).click();
    await until('the reset task', async () => (await tasksOf(DEVICE)).items.find((t) => t.kind === 'vm.power' && t.operation.kind === 'vm.power' && t.operation.action === 'reset' && t.state === 'succeeded'));
    // Power off, confirmed.
    await page.waitForSelector(`${row} button:has-text("Power off")`);
    await page.click(`${row} button:has-text("Power off")`);
    await page.getByRole('dialog', { name: 'Power off ux-vm?' }).getByRole('button', { name: 'Power off' }).click();
    await page.waitForSelector(`${row}[data-power=off]`, { timeout: 20_000 });
  });

  it('4: deleting a VM wants its name typed', async () => {
    const { page } = main;
    const row = 'tr[data-vm-name="ux-vm"]';
    await page.waitForSelector(`${row} button:has-text("Delete")`);
    await page.click(`${row} button:has-text("Delete")`);
    const dialog = page.getByRole('dialog', { name: 'Delete ux-vm?' });
    const confirm = dialog.getByRole('button', { name: 'Delete VM' });
    assert.equal(await confirm.isDisabled(), true);
    await dialog.locator('input[name=confirm]').fill('ux-v');
    assert.equal(await confirm.isDisabled(), true, 'a slip cannot delete it');
    await snap(page, 'ux-05-confirm-delete-typed');
    await dialog.locator('input[name=confirm]').fill('ux-vm');
    await confirm.click();
    await page.waitForSelector(row, { state: 'detached', timeout: 20_000 });
  });

  it('5: a pasted over-long name is kept whole and refused with the limit; nothing is sent', async () => {
    const { page } = main;
    const before = (await tasksOf(DEVICE)).total;
    await page.click('button:has-text("Create VM")');
    const pasted = 'n'.repeat(300);
    await page.fill('input[name=vm-name]', pasted);
    assert.equal((await page.inputValue('input[name=vm-name]')).length, 300, 'the name is not cut');
    await page.waitForSelector('dialog .field-error:text("Too long: 300 characters; the limit is 80")');
    assert.equal(await page.getAttribute('input[name=vm-name]', 'aria-invalid'), 'true');
    await page.click('dialog button[type=submit]');
    await page.waitForSelector('dialog .error-note:has-text("Fix the fields marked above")');
    await snap(page, 'ux-06-vm-name-too-long');
    await page.keyboard.press('Escape');
    assert.equal((await tasksOf(DEVICE)).total, before, 'nothing was sent');

    // A device's name: 255 at most; the rename button stays off and the field says why.
    await page.click('.view-head button:has-text("Rename")');
    await page.fill('input[name=device-name]', 'd'.repeat(300));
    await page.waitForSelector('dialog .field-error:text("Too long: 300 characters; the limit is 255")');
    assert.equal(await page.getByRole('dialog', { name: 'Rename device' }).getByRole('button', { name: 'Rename', exact: true }).isDisabled(), true);
    await page.keyboard.press('Escape');
    assert.equal((await admin.get<Device>(`/api/v1/devices/${ids.get(DEVICE)}`)).body.name, DEVICE);
  });

  it('5: long unbroken names wrap or stop at two lines without pushing columns off screen', async () => {
    const { page } = main;
    const deviceId = ids.get(DEVICE)!;
    await taskDone(admin, (await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, { name: LONG_VM, vcpus: 1, memoryMB: 256, diskGB: 1 })).body);
    assert.equal((await admin.patch(`/api/v1/devices/${deviceId}`, { name: LONG_DEVICE })).status, 200);
    for (const size of [DESKTOP, PHONE]) {
      await page.setViewportSize(size);
      await page.goto(`${manager.httpUrl}/devices/${deviceId}`);
      const row = page.locator(`tr[data-vm-name="${LONG_VM}"]`);
      await row.waitFor();
      assert.equal(await row.locator('.vm-name').getAttribute('title'), LONG_VM, 'the full name is in the title');
      assert.ok(await rightEdge(row.locator('button:has-text("Power on")')) <= size.width, `the VM's actions are on screen at ${size.width} px`);
      assert.ok(await rightEdge(page.locator('[data-testid=device-title]')) <= size.width, 'the device name wraps');
      const task = page.locator('tr[data-task-kind="vm.create"]').first();
      assert.ok(await rightEdge(task.locator('.badge').first()) <= size.width, `the recent task's state is on screen at ${size.width} px`);
      await page.goto(`${manager.httpUrl}/tasks`);
      const listed = page.locator('tr[data-task-kind="vm.create"]').first();
      await listed.waitFor();
      assert.equal(await listed.locator('a.row-link').getAttribute('title'), `Create VM ${LONG_VM}`);
      assert.ok(await rightEdge(listed.locator('.task-progress')) <= size.width, `the tasks list's progress is on screen at ${size.width} px`);
    }
    await page.setViewportSize(DESKTOP);
    await page.goto(`${manager.httpUrl}/devices/${deviceId}`);
    await page.waitForSelector(`tr[data-vm-name="${LONG_VM}"]`);
    await snap(page, 'ux-07-long-names-device');
    await page.goto(`${manager.httpUrl}/tasks`);
    await page.waitForSelector('tr[data-task-kind="vm.create"]');
    await snap(page, 'ux-08-long-names-tasks');
    assert.equal((await admin.patch(`/api/v1/devices/${deviceId}`, { name: DEVICE })).status, 200);
  });

  it('12: the live region announces the user\'s task progress and a device going offline', async () => {
    const { page } = main;
    const region = page.locator('[data-testid=live-announcer]');
    assert.equal(await region.getAttribute('role'), 'status');
    assert.equal(await region.getAttribute('aria-live'), 'polite');
    await page.goto(`${manager.httpUrl}/devices/${ids.get(DEVICE)}`);
    await page.waitForSelector('[data-testid=device-title]');
    await page.click('button:has-text("Create VM")');
    await page.fill('input[name=vm-name]', 'ux-live');
    await page.click('dialog button[type=submit]');
    await until('the region to say the task succeeded', async () => (await region.textContent())?.includes('Create VM ux-live: succeeded.'), 30_000);

    // A device goes offline (its agent stops): the region names it.
    const deviceId = ids.get(DOOMED)!;
    // First a VM and a queued task on it, for the decommission dialog below.
    await taskDone(admin, (await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, { name: 'kept-vm', vcpus: 1, memoryMB: 256, diskGB: 1 })).body);
    await agents.get(DOOMED)!.kill();
    await until('the region to say the device went offline', async () => (await region.textContent())?.includes(`Device ${DOOMED} went offline.`), 30_000);
  });

  it('4: the decommission dialog lists the queued task and says what happens to the VMs', async () => {
    const { page } = main;
    const deviceId = ids.get(DOOMED)!;
    const queued = (await admin.post<Task>(`/api/v1/devices/${deviceId}/vms`, { name: 'never-made', vcpus: 1, memoryMB: 256, diskGB: 1 })).body;
    assert.equal(queued.state, 'queued');
    await page.goto(`${manager.httpUrl}/devices/${deviceId}`);
    await page.waitForSelector('.view-head [data-presence=offline]');
    await page.click('.view-head button:has-text("Decommission")');
    const dialog = page.getByRole('dialog', { name: `Decommission ${DOOMED}?` });
    await dialog.locator(`[data-testid=decommission-tasks] li[data-task-id="${queued.id}"]:has-text("Create VM never-made")`).waitFor();
    assert.match(await dialog.locator('[data-testid=decommission-tasks]').textContent() ?? '', /one unfinished task is cancelled/);
    assert.match(await dialog.locator('[data-testid=decommission-vms]').textContent() ?? '', /kept-vm \(off\).*not\s+touched/s);
    await snap(page, 'ux-09-decommission-dialog');
    await dialog.locator('input[name=confirm]').fill(DOOMED);
    // The page may hear the device removed (and reload it: 404) before it leaves for the list.
    await expectingHttpError(main, 404, async () => {
      await dialog.getByRole('button', { name: 'Decommission' }).click();
      await page.waitForSelector('h1:text("Devices")');
    });
    assert.equal((await admin.get<Task>(`/api/v1/tasks/${queued.id}`)).body.state, 'cancelled');
  });

  it('6: a second tab and a ctrl-clicked device open logged in; CSRF still guards changes; logout ends both', async () => {
    const { page, context } = main;
    const deviceId = ids.get(DEVICE)!;
    // A second tab of the same browser: the cookie, not this tab's sessionStorage.
    const second = await context.newPage();
    const secondErrors: string[] = [];
    second.on('console', (m) => { if (m.type() === 'error') secondErrors.push(m.text()); });
    second.on('pageerror', (e) => secondErrors.push(e.message));
    await second.goto(`${manager.httpUrl}/tasks`);
    await second.waitForSelector('[data-testid=user-name]:text("admin")');
    await second.waitForSelector('h1:text("Tasks")');
    await snap(second, 'ux-10-second-tab');

    // A ctrl-click on a device in the list opens it in a new tab, logged in.
    await page.goto(`${manager.httpUrl}/devices`);
    const opened = context.waitForEvent('page');
    await page.click(`tr[data-device-id="${deviceId}"] a.row-link`, { modifiers: ['Control'] });
    const third = await opened;
    third.on('console', (m) => { if (m.type() === 'error') secondErrors.push(m.text()); });
    third.on('pageerror', (e) => secondErrors.push(e.message));
    try {
      await third.waitForSelector(`[data-testid=device-title]:text("${DEVICE}")`);
    } catch (err) {
      await snap(third, 'ux-failed-ctrl-click');
      throw new Error(`the ctrl-clicked tab (${third.url()}) shows: ${(await third.textContent('body'))?.slice(0, 300)}`, { cause: err });
    }
    assert.equal(await page.url(), `${manager.httpUrl}/devices`, 'the first tab stayed where it was');

    // A change from the new tab works: the console sends the CSRF header from the cookie...
    await third.click('.view-head button:has-text("Edit tags")');
    await third.fill('input[name=device-tags]', 'from-second-tab');
    await third.click('dialog button:has-text("Save tags")');
    await third.waitForSelector('.view-head .tag:text("from-second-tab")');
    // ...and the same cookie without the header is refused.
    const forged = await context.request.patch(`${manager.httpUrl}/api/v1/devices/${deviceId}`, { data: { tags: ['forged'] } });
    assert.equal(forged.status(), 403);
    assert.deepEqual((await admin.get<Device>(`/api/v1/devices/${deviceId}`)).body.tags, ['from-second-tab']);
    await third.close();

    // Logging out in one tab ends the other at once.
    // (The first tab's event stream may meet the ended session, a 401, before it hears.)
    await expectingHttpError(main, 401, async () => {
      await second.click('button:has-text("Log out")');
      await second.waitForSelector('input[name=username]');
      await page.waitForSelector('.notice:text("You logged out in another tab.")');
    });
    await snap(page, 'ux-11-logged-out-in-another-tab');
    // And a new tab now starts at the login page, asking the manager nothing (no 401 logged).
    await second.goto(`${manager.httpUrl}/devices`);
    await second.waitForSelector('input[name=username]');
    await second.close();
    assert.deepEqual(secondErrors, [], 'the other tabs logged errors');
  });
});
