// Self time by function and by package of a V8 .cpuprofile (e.g. the manager's, written by
// PALLAS_BENCH_PROFILE=<dir> npm run bench …): node bench/standalone/profile-summary.mjs <file>
import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const dt = new Map(); const byId = new Map(p.nodes.map((n) => [n.id, n]));
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const self = new Map(); let total = 0;
for (const [id, t] of dt) { const n = byId.get(id); const f = n.callFrame; const k = `${f.functionName || '(anon)'} ${f.url.replace(/.*node_modules\//, '').replace(/.*packages\//, '')}:${f.lineNumber}`; self.set(k, (self.get(k) ?? 0) + t); total += t; }
const byFile = new Map();
for (const [k, t] of self) { const f = k.split(' ')[1].split(':')[0].split('/').slice(0, 2).join('/'); byFile.set(f, (byFile.get(f) ?? 0) + t); }
console.log('total ms', (total / 1000).toFixed(0));
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((100 * t / total).toFixed(1).padStart(5), k);
console.log('--- by package/dir');
for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log((100 * t / total).toFixed(1).padStart(5), k);
