/**
 * The console's history (issue 19 point 3; docs/console.md, "Charts"), in Debian's Chromium
 * against a real manager and four real agent processes on the sim driver, reporting every 2 s:
 * - the overview draws devices by presence, enrollments and task outcomes with data (coloured
 *   pixels on the canvas, not empty frames) over 1 h and 24 h, and its text alternatives and
 *   failure reasons say what the history API says;
 * - a device page draws CPU, memory and datastore charts and a presence timeline whose words
 *   are the API's presence summary;
 * - "Needs attention" lists, by name and linked to the device page, the device whose agent
 *   stopped (offline), the one frozen with SIGSTOP (unresponsive) and the one whose power
 *   operations fail (failing);
 * - the stopped device's page greys its last values "as of" their time and still charts its past.
 * The history is what the agents really reported over the test's first minutes (nothing is
 * seeded). Any console error fails the test; screenshots at 1280×800 and 390×844 go to
 * test-results/screenshots/ (50–53).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import type { Device, DeviceHistory, FleetHistory, Task } from '@pallas/protocol';
import { formatMiB, presenceInWords } from '@pallas/protocol/units';
import {
  ADMIN_PASSWORD, createEnrollmentToken, startAgentProcess, startManagerProcess, tempDir, waitFor, type Api, type ManagerProcess, type Proc,
} from '@pallas/testkit';
import { launchChromium, logIn, openPage, snap, type WatchedPage } from './support/console-browser.js';

const NAMES = ['edge-alpha', 'edge-frozen', 'edge-gone', 'edge-failing'] as const;
type Name = (typeof NAMES)[number];
const HOUR_MS = 3600_000;

const deviceIdIn = (stateDir: string): string =>
  (JSON.parse(readFileSync(join(stateDir, 'device.json'), 'utf8')) as { deviceId: string }).deviceId;

/**
 * Pixels of a chart's canvas in a colour: what its series drew. Its frame, grid and labels are
 * white, grey or black (no channel more than 40 from the others). With `rgb`, only pixels of
 * that colour (each series has its own). Run in the page.
 */
const colouredPixels = (figure: unknown, rgb: [number, number, number] | null): number => {
  interface Canvas { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } }
  const canvas = (figure as { querySelector(selector: string): Canvas | null }).querySelector('canvas');
  if (!canvas) return 0;
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
    if (a === 0) continue;
    if (rgb ? Math.abs(r - rgb[0]) + Math.abs(g - rgb[1]) + Math.abs(b - rgb[2]) < 30 : Math.max(r, g, b) - Math.min(r, g, b) > 40) n++;
  }
  return n;
};
/** The CSS filter the browser applies to an element (run in the page). */
const filterOf = (el: unknown): string => (globalThis as unknown as { getComputedStyle(e: unknown): { filter: string } }).getComputedStyle(el).filter;

/** The console's colours (styles.css) of series that must be drawn. */
const GOOD: [number, number, number] = [0x1f, 0x7a, 0x4d];
const BAD: [number, number, number] = [0xb4, 0x23, 0x18];

/**
 * Waits until the chart has data (over `range`) and has drawn it (and each of `colours`);
 * returns its text alternative.
 */
async function drawn(page: Page, chart: string, range = '1 h', colours: Array<[number, number, number]> = []): Promise<string> {
  const figure = page.locator(`figure[data-chart="${chart}"]`);
  await figure.locator('[data-testid=chart-summary]', { hasText: ` over ${range}: ` }).waitFor();
  await waitFor(`${chart} has points`, async () => Number(await figure.getAttribute('data-points')) > 0, { timeoutMs: 15_000 });
  for (const rgb of [null, ...colours]) {
    const pixels = await waitFor(`${chart} drawn ${rgb ? `in rgb(${rgb.join(', ')})` : ''}`, async () => { const n = await figure.evaluate(colouredPixels, rgb); return n > 20 && n; }, { timeoutMs: 5_000 });
    assert.ok(pixels > 20, `${chart}: ${pixels} coloured pixels`);
  }
  // The canvas is named and described for screen readers.
  const plot = figure.locator('.chart-plot');
  assert.equal(await plot.getAttribute('role'), 'img');
  const described = await plot.getAttribute('aria-describedby');
  assert.ok(described && (await page.locator(`[id="${described}"]`).count()) === 1, `${chart}: described by its summary`);
  return figure.locator('[data-testid=chart-summary]').innerText();
}

describe('web console: history charts and what needs attention', () => {
  let manager: ManagerProcess;
  let admin: Api;
  let browser: Browser;
  let watched: WatchedPage;
  const dirs = tempDir('pallas-console-charts-');
  const procs = {} as Record<Name, Proc>;
  const ids = {} as Record<Name, string>;
  const device = async (name: Name): Promise<Device> => (await admin.get<Device>(`/api/v1/devices/${ids[name]}`)).body;
  const lastHour = () => encodeURIComponent(new Date(Date.now() - HOUR_MS).toISOString());
  const fleet = async (metric: string, step: number): Promise<FleetHistory> =>
    (await admin.get<FleetHistory>(`/api/v1/fleet/history?metric=${metric}&step=${step}&from=${lastHour()}`)).body;
  const history = async (name: Name): Promise<DeviceHistory> =>
    (await admin.get<DeviceHistory>(`/api/v1/devices/${ids[name]}/history?step=60&from=${lastHour()}`)).body;
  const power = async (name: Name, action: 'on' | 'off' | 'reset'): Promise<Task> => {
    const d = await device(name);
    const res = await admin.post<Task>(`/api/v1/devices/${d.id}/vms/${d.vms[0]!.id}/power`, { action });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return waitFor(`${name} ${action} ended`, async () => { const t = (await admin.get<Task>(`/api/v1/tasks/${res.body.id}`)).body; return ['succeeded', 'failed'].includes(t.state) && t; }, { timeoutMs: 30_000 });
  };

  before(async () => {
    // Reports every 2 s: unresponsive ~5 s after the last; the keepalive (30 s) ends a frozen
    // connection at 45 s, time enough to see it listed.
    manager = await startManagerProcess({ args: ['--keepalive-sec', '30', '--status-interval-sec', '2', '--task-sweep-ms', '200'] });
    admin = await manager.admin();
    const token = await createEnrollmentToken(admin, { maxUses: 10 });
    for (const name of NAMES) {
      const stateDir = join(dirs.path, name);
      const config = join(dirs.path, `${name}.json`);
      // The device is named after its host; edge-failing's host fails every power operation.
      writeFileSync(config, JSON.stringify({ sim: { hostname: name, ...(name === 'edge-failing' ? { failOn: { powerVm: 'host_error' } } : {}) } }));
      procs[name] = startAgentProcess({ managerUrl: manager.httpUrl, stateDir, token, args: ['--config', config] });
      ids[name] = await waitFor(`${name} id`, () => existsSync(join(stateDir, 'device.json')) && deviceIdIn(stateDir), { timeoutMs: 30_000 });
    }
    for (const name of NAMES) {
      await waitFor(`${name} online with facts and VMs`, async () => { const d = await device(name); return d.presence === 'online' && d.facts && d.vms.length > 0; }, { timeoutMs: 30_000 });
    }
    // Task outcomes: two that succeed (CPU follows the VMs that run), two that fail.
    const first = (await device('edge-alpha')).vms[0]!;
    await power('edge-alpha', first.powerState === 'on' ? 'off' : 'on');
    await power('edge-alpha', first.powerState === 'on' ? 'on' : 'off');
    assert.equal((await power('edge-failing', 'reset')).error?.code, 'host_error');
    assert.equal((await power('edge-failing', 'reset')).error?.code, 'host_error');
    // History as the manager writes it: a device's minute once it has closed, the fleet's
    // presence once a minute, task counts 30 s after their minute. Two minutes or so.
    await waitFor('two minutes of edge-alpha', async () => (await history('edge-alpha')).points.filter((p) => p.cpuPct).length >= 2, { timeoutMs: 240_000, intervalMs: 2000 });
    await waitFor('the failed tasks counted', async () => (await fleet('tasks', 60)).series.some((s) => s.label.startsWith('failed/')), { timeoutMs: 150_000, intervalMs: 2000 });
    await waitFor('two fleet samples', async () => ((await fleet('presence', 60)).series.find((s) => s.label === 'online')?.points.length ?? 0) >= 2, { timeoutMs: 150_000, intervalMs: 2000 });
    browser = await launchChromium();
    watched = await openPage(browser);
    await logIn(watched.page, manager.httpUrl, 'admin', ADMIN_PASSWORD);
  });
  afterEach(() => {
    assert.deepEqual(watched.errors, [], 'the browser logged errors');
  });
  after(async () => {
    await browser?.close();
    for (const p of Object.values(procs)) {
      try { process.kill(p.pid, 'SIGCONT'); } catch { /* gone already */ }
    }
    await Promise.all(Object.values(procs).map((a) => a.kill()));
    await manager?.close();
    dirs.cleanup();
  });

  it('the overview charts devices by presence and task outcomes, and says what the API says', async () => {
    const { page } = watched;
    await page.goto(`${manager.httpUrl}/?range=1h`);
    assert.equal(await page.locator('.range-toggle [data-range="1h"]').getAttribute('aria-current'), 'true');

    const presence = await drawn(page, 'fleet-presence', '1 h', [GOOD]);
    const online = (await fleet('presence', 60)).series.find((s) => s.label === 'online')!.points;
    const [lowest, highest] = [Math.min(...online.map((p) => p.min)), Math.max(...online.map((p) => p.max))];
    assert.equal(highest, 4);
    assert.match(presence, new RegExp(`^Devices online over 1 h: lowest ${lowest} at \\d\\d:\\d\\d, highest 4; unresponsive at most 0; offline at most \\d\\.$`));
    const tasks = await drawn(page, 'fleet-tasks', '1 h', [GOOD, BAD]);
    const series = (await fleet('tasks', 60)).series;
    const sum = (states: string[]) => series.filter((s) => states.includes(s.label.split('/')[0]!)).reduce((n, s) => n + s.points.reduce((m, p) => m + p.sum, 0), 0);
    assert.equal(sum(['failed', 'timed_out']), 2);
    assert.match(tasks, new RegExp(`^Tasks ended over 1 h: ${sum(['succeeded'])} succeeded, 2 failed or timed out; most failures in the 5 minutes from \\d\\d:\\d\\d \\([12]\\)\\.$`));
    // Enrollments, from the same request as the tasks: the four agents.
    assert.match(await drawn(page, 'fleet-enrollments'), /^Enrollments over 1 h: 4; most in the 5 minutes from \d\d:\d\d \([1-4]\)\.$/);
    const reasons = page.locator('[data-testid=failure-reasons] li');
    assert.equal(await reasons.count(), 1);
    assert.equal(await reasons.first().getAttribute('data-code'), 'host_error');
    assert.match(await reasons.first().innerText(), /^2\s+host_error in vm\.power\s+the hypervisor failed the operation/);

    // 24 h (the default): the same few minutes, as lone points at 5-minute steps.
    await page.click('.range-toggle [data-range="24h"]');
    await page.waitForURL((url) => !url.search.includes('range'));
    assert.match(await drawn(page, 'fleet-presence', '24 h', [GOOD]), /^Devices online over 24 h: lowest \d at \d\d:\d\d, highest 4;/);
    // Both bars of the hour in progress, though its middle may be after now.
    assert.match(await drawn(page, 'fleet-tasks', '24 h', [GOOD, BAD]), /2 failed or timed out/);
    await snap(page, '50-overview-charts');
  });

  it("a device page charts CPU, memory and datastore use and draws its presence timeline", async () => {
    const { page } = watched;
    await page.goto(`${manager.httpUrl}/devices/${ids['edge-alpha']}?range=1h`);
    const cpu = await drawn(page, 'cpu');
    const memory = await drawn(page, 'memory');
    const datastore = await drawn(page, 'datastore');
    const h = await history('edge-alpha');
    const peak = (pick: (p: DeviceHistory['points'][number]) => number | undefined) => Math.max(...h.points.map(pick).filter((v): v is number => v !== undefined));
    assert.match(cpu, new RegExp(`^CPU over 1 h: avg \\d+ %, peak ${Math.round(peak((p) => p.cpuPct?.max))} % at \\d\\d:\\d\\d \\(\\d+ reports\\)\\.$`));
    assert.ok(memory.includes(`peak ${formatMiB(peak((p) => p.memoryUsedMB?.max))} at`), memory);
    assert.match(datastore, /^Datastore used over 1 h: avg .+ GB, peak .+ GB at/);

    const timeline = page.locator('figure[data-chart="presence"]');
    assert.ok(await timeline.locator('.timeline-band[data-state=online]').count() >= 1, 'an online band');
    // The API's summary in the CLI's words (the share online grows by the second: left out).
    const words = presenceInWords(h.presenceSummary, 3600).split('; online')[0]!;
    const shown = await timeline.locator('[data-testid=presence-summary]').innerText();
    assert.equal(shown.split('; online')[0], words.charAt(0).toUpperCase() + words.slice(1));
    assert.match(shown, /; online [\d.]+ % of the time\./);
    await snap(page, '51-device-history');
  });

  it('lists what needs attention by name: the failing, the offline and the unresponsive device', async () => {
    const { page } = watched;
    await page.goto(`${manager.httpUrl}/`);
    const list = (name: string): Locator => page.locator(`[data-attention="${name}"] li`);
    const failing = list('failing').filter({ hasText: 'edge-failing' });
    await failing.waitFor();
    assert.match(await failing.innerText(), /edge-failing\s+2 failed, mostly host_error · last/);
    assert.equal(await failing.locator('a').getAttribute('href'), `/devices/${ids['edge-failing']}`);
    assert.equal(await list('offline').count(), 0);

    // An agent that stops goes offline; one frozen with SIGSTOP turns unresponsive: both
    // appear without a reload (live events), named and linked.
    await procs['edge-gone'].kill();
    const gone = list('offline').filter({ hasText: 'edge-gone' });
    await gone.waitFor({ timeout: 15_000 });
    assert.match(await gone.innerText(), /edge-gone\s+last seen (.+ ago|just now) \(\d\d:\d\d\)/);
    assert.equal(await gone.locator('a').getAttribute('href'), `/devices/${ids['edge-gone']}`);
    process.kill(procs['edge-frozen'].pid, 'SIGSTOP');
    try {
      const frozen = list('unresponsive').filter({ hasText: 'edge-frozen' });
      await frozen.waitFor({ timeout: 20_000 });
      assert.match(await frozen.innerText(), /edge-frozen\s+silent since \d\d:\d\d \(.+ ago\)/);
      assert.equal((await device('edge-frozen')).presence, 'unresponsive');
      await snap(page, '52-overview-attention');
    } finally {
      process.kill(procs['edge-frozen'].pid, 'SIGCONT');
    }
    await list('unresponsive').filter({ hasText: 'edge-frozen' }).waitFor({ state: 'detached', timeout: 20_000 });
  });

  it("an offline device's page greys its last values and still charts its past", async () => {
    const { page } = watched;
    const gone = await waitFor('edge-gone offline', async () => { const d = await device('edge-gone'); return d.presence === 'offline' && d; });
    await page.goto(`${manager.httpUrl}/devices/${ids['edge-gone']}?range=1h`);
    const resources = page.locator('section[aria-label="Resources"][data-stale]');
    await resources.waitFor();
    const clock = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' }).format(new Date(gone.lastSeenAt!));
    assert.equal(await resources.locator('[data-testid=as-of]').textContent(), `as of ${clock}`);
    assert.match(await resources.locator('.meter-fill').first().evaluate(filterOf), /grayscale\(1\)/, 'its last values are greyed');
    assert.match(await drawn(page, 'cpu'), /^CPU over 1 h: avg \d+ %, peak \d+ %/);
    const timeline = page.locator('figure[data-chart="presence"]');
    await timeline.locator('.timeline-band[data-state=offline]').waitFor();
    assert.match(await timeline.locator('[data-testid=presence-summary]').innerText(), /^Offline (once|\d times) in 1 h, longest [^;]+; online [\d.]+ % of the time\./);
    await snap(page, '53-device-offline-history');
  });
});
