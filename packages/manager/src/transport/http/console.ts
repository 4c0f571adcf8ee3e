import { existsSync } from 'node:fs';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from './context.js';

/** Where `npm run build` (or `npm ci`) puts the console: packages/console/dist. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../../console/dist/', import.meta.url));

/** Vite names these files after their content hash: a changed file is a new URL. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** index.html must be checked on every load so that a new build is picked up at once. */
const REVALIDATE = 'no-cache';

/**
 * The page is our own script and styles only; it talks to the API on the same origin. Vite
 * emits no inline script, so nothing needs 'unsafe-inline'.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pallas — console not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.5">
<h1>The Pallas console is not built</h1>
<p>The manager and its REST API (<a href="/api/v1/openapi.json">/api/v1</a>) are running, but the web
console's files are missing. Build them from the repository root and reload this page:</p>
<pre style="background: #f3f4f6; padding: 0.75rem 1rem; border-radius: 6px">npm run build</pre>
<p>(<code>npm ci</code> builds it too.)</p>
</body></html>
`;

/** Paths that belong to the server, never to the single-page app. */
function isServerPath(path: string): boolean {
  return path === '/api' || path.startsWith('/api/');
}

/** A request for a file (an asset, the icon), as opposed to a page of the app (`/devices/…`). */
function isFilePath(path: string): boolean {
  return path.startsWith('/assets/') || /\.[A-Za-z0-9]+$/.test(path.slice(path.lastIndexOf('/') + 1));
}

/**
 * A browser opening a page asks for HTML; API clients and scripts (`Accept: *\/*`,
 * `application/json`) get the API's JSON 404 for a path that does not exist, as before.
 * `/` is the console's address, whoever asks.
 */
function wantsPage(req: FastifyRequest, path: string): boolean {
  return path === '/' || (req.headers.accept ?? '').includes('text/html');
}

function sendIndex(reply: FastifyReply): FastifyReply {
  return reply.headers(PAGE_HEADERS).sendFile('index.html');
}

/**
 * Serves the web console at `/`: its files, and index.html for every other page a browser asks
 * for outside the API, so that a deep link (`/devices/…`) or a reload opens the app, which
 * routes it. The
 * API, health and metrics routes are more specific and win; an unknown `/api/...` path still
 * gets the API's JSON 404. Without a build, `/` explains how to make one instead of failing.
 */
export async function consoleRoutes(app: App, opts: { root?: string } = {}): Promise<void> {
  const root = opts.root ?? DEFAULT_CONSOLE_DIR;
  const built = existsSync(`${root}${sep}index.html`);

  if (!built) {
    app.log.warn({ root }, 'web console not built; `/` explains how to build it');
    app.get('/*', { schema: { hide: true } }, async (req, reply) => {
      const path = req.url.split('?')[0]!;
      if (isServerPath(path) || isFilePath(path) || !wantsPage(req, path)) return reply.callNotFound();
      return reply.status(503).type('text/html; charset=utf-8').header('cache-control', REVALIDATE).send(NOT_BUILT_PAGE);
    });
    return;
  }

  await app.register(fastifyStatic, {
    root,
    // Files are sent by the route below, which decides between a file and the app's page.
    serve: false,
    cacheControl: false,
    setHeaders: (res, filePath) => {
      res.setHeader('cache-control', filePath.includes(`${sep}assets${sep}`) ? IMMUTABLE : REVALIDATE);
    },
  });

  app.get('/*', { schema: { hide: true } }, async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (isServerPath(path)) return reply.callNotFound();
    // A missing file is a 404, never index.html: a script tag must not receive HTML.
    if (isFilePath(path)) return reply.sendFile(path.slice(1));
    return wantsPage(req, path) ? sendIndex(reply) : reply.callNotFound();
  });
}
