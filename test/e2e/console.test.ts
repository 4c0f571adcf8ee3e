/**
 * The web console in a real browser (Debian's Chromium, driven by playwright-core) against a
 * real manager process and real agent processes with the sim driver. Nothing is mocked: the
 * page talks to the manager's REST API and live event stream as an operator's browser would.
 * Any console error or uncaught exception in the page fails the test. Screenshots of each main
 * view, at 1280×800 and at a 390×844 phone, go to test-results/screenshots/.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import type { Browser } from 'playwright-core';
import { createLimiter } from '@pallas/sim';
import {
  ADMIN_PASSWORD, createEnrollmentToken, sampleHostFacts, startAgentProcess, startManagerProcess, tempDir,
  type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { expectingHttpError, launchChromium, logIn, openPage, openSection, snap, type WatchedPage } from './support/console-browser.js';

describe('web console', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let token: string;
  let browser: Browser;
  const dirs = tempDir('pallas-console-');
  const agents: Proc[] = [];
  const pages: WatchedPage[] = [];
  let main: WatchedPage;

  const watched = async () => {
    const p = await openPage(browser);
    pages.push(p);
    return p;
  };

  before(async () => {
    manager = await startManagerProcess({ args: ['--keepalive-sec', '5', '--status-interval-sec', '30'] });
    admin = await manager.admin();
    token = await createEnrollmentToken(admin, { maxUses: 10 });
    browser = await launchChromium();
    main = await watched();
  });
  afterEach(() => {
    for (const p of pages) assert.deepEqual(p.errors, [], 'the browser logged errors');
  });
  after(async () => {
    await browser?.close();
    await Promise.all(agents.map((a) => a.kill()));
    await manager?.close();
    dirs.cleanup();
  });

  it('is served at / with the right cache headers, and leaves the API alone', async () => {
    const page = { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } }; // as a browser asks
    const index = await fetch(`${manager.httpUrl}/`, page);
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await index.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'index.html names its script');
    const script = await fetch(`${manager.httpUrl}${asset}`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('cache-control') ?? '', /immutable/);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    // A browser's deep link gets the app; a missing asset, an unknown API path and a
    // non-browser client asking for an unknown path do not.
    const deep = await fetch(`${manager.httpUrl}/devices/some-id?x=1`, page);
    assert.equal(deep.status, 200);
    assert.match(await deep.text(), /<div id="root">/);
    assert.equal((await fetch(`${manager.httpUrl}/devices/some-id`)).status, 404);
    assert.equal((await fetch(`${manager.httpUrl}/assets/missing-abc.js`)).status, 404);
    const api404 = await fetch(`${manager.httpUrl}/api/v1/nothing-here`, page);
    assert.equal(api404.status, 404);
    assert.equal(((await api404.json()) as { error: { code: string } }).error.code, 'not_found');
    assert.equal((await fetch(`${manager.httpUrl}/healthz`)).status, 200);
  });

  it('logs in, shows who is logged in, and shows devices coming online without a reload', async (t) => {
    const { page } = main;
    await page.goto(`${manager.httpUrl}/`);
    await snap(page, '01-login');
    await logIn(page, manager.httpUrl, 'admin', ADMIN_PASSWORD);
    assert.equal(await page.textContent('[data-testid=user-name]'), 'admin');
    assert.ok(await page.isVisible('.user-box .badge:has-text("admin")'));
    await openSection(page, 'Devices');
    await page.waitForSelector('text=No device matches');

    // Agents start after the page is open: rows must appear and turn online by themselves.
    for (const name of ['edge-berlin', 'edge-lyon', 'edge-porto']) {
      // Each host has its own name; VM operations take 600 ms, so progress is visible.
      const simConfig = join(dirs.path, `${name}.json`);
      writeFileSync(simConfig, JSON.stringify({ sim: { latencyMs: 600, hostname: name } }));
      agents.push(startAgentProcess({ managerUrl: manager.httpUrl, stateDir: join(dirs.path, name), token, args: ['--config', simConfig] }));
    }
    const started = Date.now();
    // (The page's CSP forbids eval, so no string predicates: wait for the third online row.)
    await page.locator('tbody tr [data-presence=online]').nth(2).waitFor({ timeout: 20_000 });
    t.diagnostic(`3 devices shown online ${Date.now() - started} ms after their agents started, without reloading`);
    await snap(page, '03-devices');
    await openSection(page, 'Overview');
    await page.waitForSelector('[data-stat=online] .stat-value:text("3")');
    await snap(page, '02-overview');
  });

  it('creates a VM, powers it on and off, and deletes it, following each task live', async () => {
    const { page } = main;
    await openSection(page, 'Devices');
    await page.click('tbody tr a.row-link >> nth=0');
    await page.waitForSelector('[data-testid=device-title]');
    const vmName = 'console-vm-1';

    // The form refuses what the manager would refuse, before sending anything.
    await page.click('button:has-text("Create VM")');
    await page.fill('input[name=vm-name]', ' bad name');
    await page.fill('input[name=vm-vcpus]', '500');
    await page.click('dialog button[type=submit]');
    await page.waitForSelector('text=vCPUs must be between 1 and 128');
    await page.fill('input[name=vm-name]', vmName);
    await page.fill('input[name=vm-vcpus]', '2');
    await page.fill('input[name=vm-memory]', '1024');
    await page.fill('input[name=vm-disk]', '10');
    await page.click('dialog button[type=submit]');

    // The create task shows its progress, then the VM appears, powered off, and the task is done.
    await page.waitForSelector('[data-pending-task] .task-status-text');
    await page.waitForSelector(`tr[data-vm-name="${vmName}"][data-power=off]`, { timeout: 20_000 });
    await page.waitForSelector('tr[data-task-kind="vm.create"][data-task-state=succeeded]');
    await snap(page, '04-device-detail');

    const row = `tr[data-vm-name="${vmName}"]`;
    await page.click(`${row} button:has-text("Power on")`);
    await page.waitForSelector(`${row} .task-progress`); // the row says the task is under way
    await page.waitForSelector(`${row}[data-power=on]`, { timeout: 20_000 });
    await page.click(`${row} button:has-text("Power off")`);
    // Powering off a running VM asks first (issue #18, point 4).
    await page.click(`dialog:has-text("Power off ${vmName}?") button:has-text("Power off")`);
    await page.waitForSelector(`${row}[data-power=off]`, { timeout: 20_000 });
    await page.waitForSelector('tr[data-task-kind="vm.power"][data-task-state=succeeded] >> nth=1');

    await page.click(`${row} button:has-text("Delete")`);
    await page.waitForSelector(`dialog:has-text("Delete ${vmName}?")`);
    await page.fill('dialog input[name=confirm]', vmName); // its name, typed
    await page.click('dialog button:has-text("Delete VM")');
    await page.waitForSelector(row, { state: 'detached', timeout: 20_000 });
    await page.waitForSelector('tr[data-task-kind="vm.delete"][data-task-state=succeeded]');

    await openSection(page, 'Tasks');
    await page.waitForSelector('tr[data-task-kind="vm.delete"][data-task-state=succeeded]');
    assert.equal(await page.locator('tr[data-task-state=succeeded]').count(), 4);
    await snap(page, '05-tasks');
    await page.click('tr[data-task-kind="vm.create"] a.row-link');
    await page.waitForSelector('.timeline li.done >> nth=3');
    await snap(page, '06-task-detail');
  });

  it('shows the host\'s capacity beside the VM form\'s fields, and sends past its last report only when asked (issue #18 point 2)', async () => {
    const { page } = main;
    await openSection(page, 'Devices');
    await page.click('tbody tr a.row-link >> nth=0');
    const name = (await page.textContent('[data-testid=device-title]'))?.trim() ?? '';
    const list = await admin.get<{ items: Array<{ id: string; name: string; facts: { cpu: { cores: number } } | null }> }>(`/api/v1/devices?name=${encodeURIComponent(name)}`);
    const device = list.body.items.find((d) => d.name === name);
    assert.ok(device?.facts, `device ${name} has reported its facts`);
    const cores = device.facts.cpu.cores;

    await page.click('button:has-text("Create VM")');
    await page.waitForSelector(`dialog >> text="The host has ${cores} cores"`);
    await page.fill('input[name=vm-name]', 'too-big-1');
    await page.fill('input[name=vm-vcpus]', String(cores + 1));
    // Refused at once on the last report, with the host's value; nothing was queued.
    await expectingHttpError(main, 422, async () => {
      await page.click('dialog button[type=submit]');
      await page.waitForSelector(`dialog >> text=/asks for ${cores + 1} vCPUs, but host .* has ${cores} cores/`);
    });
    const queued = async () => (await admin.get<{ total: number }>(`/api/v1/tasks?deviceId=${device.id}&kind=vm.create&limit=100`)).body.total;
    const before = await queued();
    await snap(page, '04b-vm-form-refused');
    await page.check('dialog input[name=force]');
    await page.click('dialog button[type=submit]');
    await page.waitForSelector('dialog', { state: 'detached' });
    assert.equal(await queued(), before + 1, 'sent anyway once asked');
  });

  it('creates, edits and deletes a user; shows API errors as readable messages', async () => {
    const { page } = main;
    await openSection(page, 'Users');
    await page.waitForSelector('tr[data-username=admin]');
    await page.click('button:has-text("Create user")');
    await page.fill('input[name=new-username]', 'olga');
    await page.fill('input[name=new-password]', 'a-long-password');
    await page.selectOption('dialog select[name=role]', 'operator');
    await page.click('dialog button[type=submit]');
    await page.waitForSelector('tr[data-username=olga] .badge:has-text("operator")');
    await snap(page, '07-users');

    // The same name again: the manager's 409 message is shown in the dialog, which stays open.
    // (Chromium logs every 4xx response as a console error; this one is expected.)
    const errorsBefore = main.errors.length;
    await page.click('button:has-text("Create user")');
    await page.fill('input[name=new-username]', 'olga');
    await page.fill('input[name=new-password]', 'a-long-password');
    await page.click('dialog button[type=submit]');
    const message = await page.textContent('dialog .error-note');
    assert.match(message ?? '', /olga/);
    main.errors.splice(errorsBefore).forEach((e) => assert.match(e, /409/));
    await page.click('dialog button:has-text("Cancel")');

    await page.click('tr[data-username=olga] button:has-text("Edit")');
    await page.selectOption('dialog select[name=role]', 'viewer');
    await page.click('dialog button[type=submit]');
    await page.waitForSelector('tr[data-username=olga] .badge:has-text("viewer")');
    await page.click('tr[data-username=olga] button:has-text("Delete")');
    await page.click('dialog button:has-text("Delete user")');
    await page.waitForSelector('tr[data-username=olga]', { state: 'detached' });
  });

  it('creates an enrollment token and shows the exact agent command', async () => {
    const { page } = main;
    await openSection(page, 'Enrollment');
    await page.click('button:has-text("Create token")');
    await page.fill('input[name=token-name]', 'shop rollout');
    await page.fill('input[name=token-uses]', '5');
    await page.click('dialog button[type=submit]');
    const command = await page.textContent('[data-testid=agent-command]');
    assert.match(command ?? '', new RegExp(`^npx pallas-agent --manager ${manager.httpUrl.replace(/\./g, '\\.')} --token \\S+ --state-dir /var/lib/pallas-agent$`));
    await page.waitForSelector('td:has-text("shop rollout")');
    await snap(page, '08-enrollment');
    // The command works: an agent enrolled with the token shows up in the list of devices.
    const secret = / --token (\S+)/.exec(command!)![1]!;
    agents.push(startAgentProcess({ managerUrl: manager.httpUrl, stateDir: join(dirs.path, 'from-console'), token: secret }));
    await openSection(page, 'Devices');
    await page.locator('tbody tr [data-presence=online]').nth(3).waitFor({ timeout: 20_000 });
  });

  it('shows a viewer no write actions', async () => {
    assert.equal((await admin.post('/api/v1/users', { username: 'vera', password: 'viewer-password', role: 'viewer' })).status, 201);
    const viewer = await watched();
    const { page } = viewer;
    await logIn(page, manager.httpUrl, 'vera', 'viewer-password');
    const menu = await page.locator('nav.sidenav a').allTextContents();
    assert.deepEqual(menu, ['Overview', 'Devices', 'Tasks', 'Groups', 'Rollouts', 'Artifacts', 'API tokens']);
    await openSection(page, 'Devices');
    await page.click('tbody tr a.row-link >> nth=0');
    await page.waitForSelector('[data-testid=device-title]');
    await page.waitForSelector('section[aria-label="Virtual machines"] tbody tr');
    // Read-only: facts, VMs and tasks are there, but no button that changes anything.
    const buttons = await page.locator('.content button').allTextContents();
    assert.deepEqual(buttons, []);
    await snap(page, '09-viewer-device');
    await openSection(page, 'Tasks');
    await page.click('tbody tr a.row-link >> nth=0');
    await page.waitForSelector('.timeline');
    assert.deepEqual(await page.locator('.content button').allTextContents(), []);
    await page.click('button:has-text("Log out")');
    await page.waitForSelector('input[name=username]');
  });
});

describe('web console with 10,000 devices', () => {
  const DEVICES = 10_000;
  let manager: ManagerProcess;
  let browser: Browser;
  let watchedPage: WatchedPage;
  let enrollMs = 0;

  before(async () => {
    manager = await startManagerProcess();
    const admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: DEVICES });
    // Registered through the enrollment API by a light client (no agents): what matters here
    // is the size of the devices table, not 10,000 MQTT sessions on a two-core machine.
    const gate = createLimiter(32);
    const started = Date.now();
    await Promise.all(Array.from({ length: DEVICES }, (_, i) => gate(async () => {
      const name = `perf-${String(i).padStart(5, '0')}`;
      const res = await fetch(`${manager.httpUrl}/api/v1/enroll`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token, deviceId: randomUUID(), facts: sampleHostFacts(name) }),
      });
      if (res.status !== 200) throw new Error(`enroll ${name}: ${res.status} ${await res.text()}`);
    })));
    enrollMs = Date.now() - started;
    browser = await launchChromium();
    watchedPage = await openPage(browser);
  });
  after(async () => {
    await browser?.close();
    await manager?.close();
  });

  // The speed targets (first render < 1 s, search < 300 ms) are measured by the benchmark
  // (`npm run bench -- --scenario console`, bench/scenarios/console.ts) beside a same-run
  // baseline; a wall-clock limit here failed on a loaded machine and said nothing about the
  // console. This checks what the page shows with a large fleet, and prints the timings.
  it('renders the first page and answers searches with 10,000 devices', async (t: TestContext) => {
    const { page, errors } = watchedPage;
    await logIn(page, manager.httpUrl, 'admin', ADMIN_PASSWORD);

    // First render: a full page load of /devices (HTML, script, API call, table), timed from
    // navigation start to the first row, cold (first visit) and then with the assets cached.
    const firstRender = async (): Promise<number> => {
      const t0 = Date.now();
      await page.goto(`${manager.httpUrl}/devices`);
      await page.waitForSelector('tbody tr[data-device-id]');
      return Date.now() - t0;
    };
    const cold = await firstRender();
    const warm = [await firstRender(), await firstRender(), await firstRender()].sort((a, b) => a - b)[1]!;
    assert.equal(await page.locator('tbody tr[data-device-id]').count(), 50);
    assert.match((await page.textContent('.view-head .muted')) ?? '', /10,000 in the fleet/);
    await snap(page, '10-devices-10k');

    // Search: from typing the last character to the table showing that query's answer
    // (includes the 60 ms typing pause the box waits for before it asks the manager).
    const searchMs: number[] = [];
    for (const q of ['perf-07777', 'perf-0123', 'perf-09', 'perf-00042']) {
      const t0 = Date.now();
      await page.fill('input[name=search]', q);
      await page.waitForSelector(`[data-results-for="${q}"] tbody tr[data-device-id]`);
      searchMs.push(Date.now() - t0);
    }
    assert.equal(await page.locator('tbody tr[data-device-id]').count(), 1); // perf-00042
    const median = [...searchMs].sort((a, b) => a - b)[Math.floor(searchMs.length / 2)]!;
    t.diagnostic(`${DEVICES} devices registered through the enrollment API in ${enrollMs} ms`);
    t.diagnostic(`devices page first render with ${DEVICES} devices: ${cold} ms cold, ${warm} ms warm (median of 3); for information (the target is checked by npm run bench)`);
    t.diagnostic(`search answers: ${searchMs.join(', ')} ms (median ${median} ms, incl. 60 ms debounce); for information`);
    assert.deepEqual(errors, []);
  });
});
