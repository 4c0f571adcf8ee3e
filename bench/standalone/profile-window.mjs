// A window of a V8 .cpuprofile, for a profile whose interesting part is a few seconds of a
// long run (a fan-out after minutes of enrolling and connecting):
//   node bench/standalone/profile-window.mjs <file>                 busy share per second
//   node bench/standalone/profile-window.mjs <file> <from> <to>     that window (seconds from the start):
//     self time by function; inclusive time of the manager's own functions; and what each
//     costly leaf (socket writes, GC aside) was called for: the nearest package frame above it.
import { readFileSync } from 'node:fs';

const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const from = process.argv[3] === undefined ? undefined : Number(process.argv[3]) * 1e6;
const to = process.argv[4] === undefined ? undefined : Number(process.argv[4]) * 1e6;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/.*node_modules\//, '').replace(/.*packages\//, '')}:${n.callFrame.lineNumber}`;
const idle = (n) => n.callFrame.functionName === '(idle)';

// Sample times relative to the profile's start.
const times = [];
let t = 0;
for (let i = 0; i < p.samples.length; i++) times.push((t += p.timeDeltas[i] ?? 0));

if (from === undefined) {
  const busy = new Map();
  const all = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const s = Math.floor(times[i] / 1e6);
    const d = p.timeDeltas[i] ?? 0;
    all.set(s, (all.get(s) ?? 0) + d);
    if (!idle(byId.get(p.samples[i]))) busy.set(s, (busy.get(s) ?? 0) + d);
  }
  for (const [s, d] of all) console.log(`${String(s).padStart(5)} s ${(100 * (busy.get(s) ?? 0) / d).toFixed(0).padStart(3)} % busy`);
  process.exit();
}

const self = new Map();
const inclusive = new Map();
const leafFor = new Map();
let total = 0;
let busyTotal = 0;
for (let i = 0; i < p.samples.length; i++) {
  if (times[i] < from || times[i] > to) continue;
  const d = p.timeDeltas[i] ?? 0;
  const leaf = byId.get(p.samples[i]);
  total += d;
  if (idle(leaf)) continue;
  busyTotal += d;
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + d);
  const seen = new Set();
  let caller;
  for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
    const n = byId.get(id);
    const k = name(n);
    if (n.callFrame.url.includes('manager/dist') && !seen.has(k)) {
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + d);
    }
    if (caller === undefined && id !== leaf.id && n.callFrame.url.includes('node_modules/')) caller = n.callFrame.url.replace(/.*node_modules\//, '').split('/').slice(0, 2).join('/');
  }
  if (!leaf.callFrame.url) {
    const k = `${leaf.callFrame.functionName} ← ${caller ?? '?'}`;
    leafFor.set(k, (leafFor.get(k) ?? 0) + d);
  }
}
const pct = (x) => (100 * x / total).toFixed(1).padStart(5);
console.log(`window ${(from / 1e6).toFixed(0)}–${(to / 1e6).toFixed(0)} s: ${(total / 1e6).toFixed(1)} s, ${pct(busyTotal)} % busy (shares below are of the window)`);
console.log('--- self time');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(pct(v), k);
console.log('--- native leaves by the package that called them');
for (const [k, v] of [...leafFor].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(pct(v), k);
console.log('--- inclusive time of the manager\'s functions');
for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(pct(v), k);
