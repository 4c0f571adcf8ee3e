#!/usr/bin/env -S node --import tsx
// Writes packages/agent/src/checks/generated.ts: the agent's checks, generated from the
// schemas (src/checks/generate.ts). Run after changing a schema the agent checks (the
// protocol's messages, or the agent's own files), with the protocol built (`npx tsc -b`):
//
//   node --import tsx packages/agent/scripts/gen-checks.ts
//
// test/checks.test.ts fails while the committed file differs from what this writes.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generateChecks } from '../src/checks/generate.js';

const out = fileURLToPath(new URL('../src/checks/generated.ts', import.meta.url));
writeFileSync(out, generateChecks());
process.stdout.write(`${out}\n`);
