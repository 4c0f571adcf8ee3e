/**
 * Scenario "console": how fast the web console shows a large fleet (issue #7: first render
 * < 1 s and search < 300 ms at 10,000 devices), moved here from the console's browser test,
 * where a wall-clock limit fails on a loaded machine without saying anything about the
 * console (issue #21, point 6). A real manager with N devices registered through the
 * enrollment API; Debian's Chromium driven by playwright-core, as in the browser tests.
 *
 * The baseline, measured in the same run: the API call the page makes for the same answer
 * (`listDevices`), timed with @pallas/client, the client the page itself uses. The ratio is
 * what the page adds (HTML, script, rendering) on top of the manager's answer.
 */
import { randomUUID } from 'node:crypto';
import type { DeviceQuery } from '@pallas/protocol';
import { PallasClient } from '@pallas/client';
import { createLimiter } from '@pallas/sim';
import { ADMIN_PASSWORD, sampleHostFacts, startManagerProcess } from '@pallas/testkit';
import { launchChromium, logIn, openPage } from '../../test/e2e/support/console-browser.js';
import { percentile, type Row } from '../lib/stats.js';

export interface ConsoleOptions {
  devices: number;
  rounds: number;
}

const nameOf = (i: number): string => `perf-${String(i).padStart(5, '0')}`;

export async function runConsole(o: ConsoleOptions): Promise<{ rows: Row[]; raw: Record<string, unknown> }> {
  // One exact name, two prefixes and another exact name, all within the fleet.
  const QUERIES = [nameOf(Math.floor(o.devices * 0.78)), nameOf(123).slice(0, 9), 'perf-0', nameOf(42)];
  const manager = await startManagerProcess();
  const browser = await launchChromium();
  try {
    const admin = await manager.client();
    const { token } = await admin.call('createEnrollmentToken', { body: { maxUses: o.devices } });
    const device = new PallasClient({ server: manager.httpUrl });
    const gate = createLimiter(32);
    const enrollStarted = Date.now();
    await Promise.all(Array.from({ length: o.devices }, (_, i) => gate(() =>
      device.call('enroll', { body: { token, deviceId: randomUUID(), facts: sampleHostFacts(nameOf(i)) } }))));
    const enrollMs = Date.now() - enrollStarted;

    const { page, errors } = await openPage(browser);
    await logIn(page, manager.httpUrl, 'admin', ADMIN_PASSWORD);
    // From navigation start to the first row: HTML, script, the API call and the table.
    const firstRender = async (): Promise<number> => {
      const t0 = performance.now();
      await page.goto(`${manager.httpUrl}/devices`);
      await page.waitForSelector('tbody tr[data-device-id]');
      return performance.now() - t0;
    };
    const cold = await firstRender();
    const warm: number[] = [];
    for (let i = 0; i < o.rounds; i++) warm.push(await firstRender());
    // From typing the last character to the table showing that query's answer (includes the
    // 60 ms the search box waits for more typing before it asks).
    const search: number[] = [];
    for (let i = 0; i < o.rounds; i++) {
      for (const q of QUERIES) {
        await page.fill('input[name=search]', '');
        const t0 = performance.now();
        await page.fill('input[name=search]', q);
        await page.waitForSelector(`[data-results-for="${q}"] tbody tr[data-device-id]`);
        search.push(performance.now() - t0);
      }
    }
    if (errors.length > 0) throw new Error(`console errors: ${errors.join('; ')}`);

    // The same answers straight from the API.
    const api = async (query: DeviceQuery): Promise<number> => {
      const t0 = performance.now();
      await admin.call('listDevices', { query });
      return performance.now() - t0;
    };
    const apiList: number[] = [];
    const apiSearch: number[] = [];
    for (let i = 0; i < o.rounds; i++) {
      apiList.push(await api({ limit: 50, sort: 'name' }));
      for (const q of QUERIES) apiSearch.push(await api({ limit: 50, sort: 'name', name: q }));
    }
    const p50 = (s: number[]) => percentile(s, 50);
    const rows: Row[] = [
      { metric: `devices page, first render, cold (${o.devices} devices)`, value: cold, unit: 'ms', baseline: { name: 'API list call', value: p50(apiList) }, target: '< 1000 ms' },
      { metric: 'devices page, first render, cached assets (p50)', value: p50(warm), unit: 'ms', baseline: { name: 'API list call', value: p50(apiList) }, target: '< 1000 ms' },
      { metric: 'search answer in the table (p50)', value: p50(search), unit: 'ms', baseline: { name: 'API search call', value: p50(apiSearch) }, target: '< 300 ms' },
    ];
    return { rows, raw: { devices: o.devices, enrollMs, coldMs: cold, warmMs: warm, searchMs: search, apiListMs: apiList, apiSearchMs: apiSearch } };
  } finally {
    await browser.close();
    await manager.close();
  }
}
