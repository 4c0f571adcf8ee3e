#!/usr/bin/env node
// Builds the agent as one self-contained ESM file, the payload of an `agent` artifact
// (docs/agent-update.md): `node pallas-agent.mjs …` runs it with no node_modules beside it.
//
//   node packages/agent/scripts/bundle.mjs [--outfile <file>]
//   PALLAS_AGENT_VERSION=0.1.1-test node packages/agent/scripts/bundle.mjs --outfile /tmp/a.mjs
//
// The version is baked in (src/version.ts reads it): PALLAS_AGENT_VERSION, default the
// protocol's PALLAS_VERSION. Built from src/ (esbuild reads TypeScript), but @pallas/protocol
// comes from its dist/, so run `npx tsc -b` first.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const args = process.argv.slice(2);
const at = args.indexOf('--outfile');
if (args.length > 0 && (at !== 0 || args.length !== 2)) {
  process.stderr.write('usage: bundle.mjs [--outfile <file>]\n');
  process.exit(2);
}
const outfile = at === 0 ? resolve(args[1]) : join(pkg, 'dist', 'bundle', 'pallas-agent.mjs');

const protocolConstants = readFileSync(join(pkg, '..', 'protocol', 'src', 'constants.ts'), 'utf8');
const defaultVersion = /PALLAS_VERSION = '([^']+)'/.exec(protocolConstants)?.[1];
const version = process.env.PALLAS_AGENT_VERSION || defaultVersion;
if (!version || !/^[A-Za-z0-9][A-Za-z0-9._+~-]*$/.test(version)) {
  process.stderr.write(`bundle.mjs: bad agent version ${JSON.stringify(version)}\n`);
  process.exit(2);
}

await build({
  entryPoints: [join(pkg, 'src', 'main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // Lazy imports (drivers, encrypt-secret, the supervisor) are inlined: one file, no chunks.
  splitting: false,
  define: { __PALLAS_AGENT_VERSION__: JSON.stringify(version) },
  // CommonJS dependencies (pino, mqtt's) call require() for Node built-ins; ESM output has none.
  // The first line names the bundle and its version: the manager checks it at upload
  // (docs/artifacts.md#what-each-kind-must-be) without running the file.
  banner: { js: `// pallas-agent ${version}\nimport { createRequire as __pallasCreateRequire } from 'node:module';\nconst require = __pallasCreateRequire(import.meta.url);` },
  legalComments: 'none',
  logLevel: 'warning',
});
process.stdout.write(`${outfile} (pallas-agent ${version})\n`);
