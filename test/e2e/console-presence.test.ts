/**
 * Stale values in the web console (docs/console.md, "Stale values"), in Debian's Chromium
 * against a real manager and real agent processes on the sim driver: a frozen agent (SIGSTOP)
 * turns unresponsive and one that was stopped turns offline; both show their CPU, memory and
 * VM power states greyed "as of" their last report, on the device list and the device page,
 * and the frozen one turns live again by itself after SIGCONT. Any console error fails the
 * test; screenshots at 1280×800 and 390×844 go to test-results/screenshots/.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { Device } from '@pallas/protocol';
import {
  ADMIN_PASSWORD, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor, type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { launchChromium, logIn, openPage, openSection, snap, type WatchedPage } from './support/console-browser.js';

const deviceIdIn = (stateDir: string): string =>
  (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;
/** What the console prints for a time today (lib/format.ts `formatClock`), in this machine's zone like the browser. */
/** The CSS filter the browser applies to an element (a function run in the page). */
const filterOf = (el: unknown): string => (globalThis as unknown as { getComputedStyle(e: unknown): { filter: string } }).getComputedStyle(el).filter;
const clock = (iso: string) => new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' }).format(new Date(iso));

describe('web console: stale values of unresponsive and offline devices', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let browser: Browser;
  let watched: WatchedPage;
  const dirs = tempDir('pallas-console-presence-');
  const agents: Proc[] = [];
  const ids: Record<string, string> = {};
  const procs: Record<string, Proc> = {};
  const device = async (name: string): Promise<Device> => (await admin.get<Device>(`/api/v1/devices/${ids[name]!}`)).body;

  before(async () => {
    // Reports every 2 s: unresponsive 5–5.5 s after the last one; the keepalive (10 s) ends a
    // frozen connection at 15 s, long enough to look at it.
    manager = await startManagerProcess({ args: ['--keepalive-sec', '10', '--status-interval-sec', '2'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 5 });
    for (const name of ['edge-frozen', 'edge-gone', 'edge-live']) {
      const stateDir = join(dirs.path, name);
      const config = join(dirs.path, `${name}.json`);
      writeFileSync(config, JSON.stringify({ sim: { hostname: name } })); // the device is named after its host
      const proc = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--config', config] });
      agents.push(proc);
      procs[name] = proc;
      ids[name] = await waitFor(`${name} id`, () => existsSync(join(stateDir, 'device.json')) && deviceIdIn(stateDir), { timeoutMs: 30_000 });
    }
    for (const name of Object.keys(ids)) {
      await waitFor(`${name} online with facts and VMs`, async () => { const d = await device(name); return d.presence === 'online' && d.facts && d.vms.length > 0; }, { timeoutMs: 30_000 });
    }
    browser = await launchChromium();
    watched = await openPage(browser);
  });
  afterEach(() => {
    assert.deepEqual(watched.errors, [], 'the browser logged errors');
  });
  after(async () => {
    await browser?.close();
    for (const p of agents) {
      try { process.kill(p.pid, 'SIGCONT'); } catch { /* gone already */ }
    }
    await Promise.all(agents.map((a) => a.kill()));
    await manager?.close();
    dirs.cleanup();
  });

  it('greys an unresponsive and an offline device\'s values "as of" their last report, on the list and the device page', async () => {
    const { page } = watched;
    await logIn(page, manager.httpUrl, 'admin', ADMIN_PASSWORD);
    await openSection(page, 'Devices');
    await page.locator('tbody tr [data-presence=online]').nth(2).waitFor();
    // Live values: no "as of" anywhere.
    assert.equal(await page.locator('[data-testid=as-of]').count(), 0);

    process.kill(procs['edge-frozen']!.pid, 'SIGSTOP');
    await procs['edge-gone']!.kill();
    const frozenRow = page.locator(`tr[data-device-id="${ids['edge-frozen']!}"]`);
    const goneRow = page.locator(`tr[data-device-id="${ids['edge-gone']!}"]`);
    // The list follows the live stream: no reload.
    await goneRow.locator('[data-presence=offline]').waitFor();
    await frozenRow.locator('[data-presence=unresponsive]').waitFor({ timeout: 10_000 });
    const frozen = await device('edge-frozen');
    const gone = await device('edge-gone');
    assert.equal(frozen.presence, 'unresponsive');
    assert.equal(gone.presence, 'offline');
    for (const [row, d] of [[frozenRow, frozen], [goneRow, gone]] as const) {
      assert.equal(await row.locator('[data-stale]').count(), 1, `${d.name}: its CPU and memory cell is stale`);
      assert.equal(await row.locator('[data-testid=as-of]').textContent(), `as of ${clock(d.lastSeenAt!)}`);
    }
    const liveRow = page.locator(`tr[data-device-id="${ids['edge-live']!}"]`);
    assert.equal(await liveRow.locator('[data-stale], [data-testid=as-of]').count(), 0, 'the online device is live');
    // The filter finds the unresponsive one alone.
    await page.selectOption('select[name=presence]', 'unresponsive');
    await page.locator('tbody tr').filter({ hasText: 'edge-live' }).waitFor({ state: 'detached' });
    assert.deepEqual(await page.locator('tbody tr a.row-link').allTextContents(), ['edge-frozen']);
    await page.selectOption('select[name=presence]', '');
    await page.locator('tbody tr').nth(2).waitFor();
    await snap(page, '40-devices-stale');

    // The unresponsive device's page: a notice, resources and VM power states greyed "as of".
    await frozenRow.locator('a.row-link').click();
    await page.waitForSelector('[data-testid=unresponsive-notice]');
    for (const panel of ['Resources', 'Virtual machines']) {
      const section = page.locator(`section[aria-label="${panel}"]`);
      assert.equal(await section.getAttribute('data-stale'), 'true', `${panel} is marked stale`);
      assert.equal(await section.locator('[data-testid=as-of]').textContent(), `as of ${clock(frozen.lastSeenAt!)}`);
    }
    const power = page.locator('section[aria-label="Virtual machines"] .badge[data-power]').first();
    assert.match(await power.evaluate(filterOf), /grayscale\(1\)/, 'VM power states are greyed');
    const meter = page.locator('section[aria-label="Resources"] .meter-fill').first();
    assert.match(await meter.evaluate(filterOf), /grayscale\(1\)/, 'resource bars are greyed');
    await snap(page, '41-device-unresponsive');

    // Woken: the page turns live by itself.
    process.kill(procs['edge-frozen']!.pid, 'SIGCONT');
    await page.locator('header [data-presence=online]').waitFor({ timeout: 10_000 });
    await page.locator('[data-testid=as-of]').first().waitFor({ state: 'detached' });
    assert.equal(await page.locator('section[data-stale]').count(), 0);

    // The offline device's page says the same, with the time of its last report.
    await page.goto(`${manager.httpUrl}/devices/${ids['edge-gone']!}`);
    await page.waitForSelector('section[aria-label="Resources"][data-stale]');
    assert.equal(await page.locator('section[aria-label="Resources"] [data-testid=as-of]').textContent(), `as of ${clock(gone.lastSeenAt!)}`);
    await snap(page, '42-device-offline');
  });
});
