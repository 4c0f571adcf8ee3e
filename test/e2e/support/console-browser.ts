/**
 * What the console's browser tests share: Debian's Chromium with its networking quietened, a
 * page that records every console error and page error (the tests fail on them), logging in,
 * and screenshots at desktop and phone size.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '@pallas/testkit';

export const CHROMIUM = process.env.PALLAS_CHROMIUM ?? '/usr/bin/chromium';
// Without the networking flags Chromium keeps calling home, which this machine refuses.
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const SCREENSHOTS = join(REPO_ROOT, 'test-results', 'screenshots');
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A browser page that records every console error and page error, for the test to fail on. */
export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  errors: string[];
}

export async function openPage(browser: Browser): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.setDefaultTimeout(15_000);
  return { page, context, errors };
}

export async function logIn(page: Page, baseUrl: string, username: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=user-name]');
}

/** Screenshots of the current view at desktop and phone size. */
export async function snap(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-1280x800.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(100); // let the layout settle
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-390x844.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

/** Navigates with the app's own menu (no reload: the live stream stays open). */
export async function openSection(page: Page, label: string): Promise<void> {
  await page.click(`nav.sidenav >> text="${label}"`);
}

/**
 * Runs `action`, which makes the manager answer with an expected HTTP error, and removes the
 * console error Chromium logs for that response (only that one: anything else still fails).
 */
export async function expectingHttpError(watched: WatchedPage, status: number, action: () => Promise<void>): Promise<void> {
  const before = watched.errors.length;
  await action();
  for (const e of watched.errors.splice(before)) {
    if (!e.includes(String(status))) throw new Error(`unexpected browser error: ${e}`);
  }
}
