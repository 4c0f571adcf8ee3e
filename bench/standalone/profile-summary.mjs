// Self time by function and by package of a V8 .cpuprofile (e.g. the manager's, written by
// PALLAS_BENCH_PROFILE=<dir> npm run bench …), and time including callees:
//
//   node bench/standalone/profile-summary.mjs <file>                 the whole profile
//   node bench/standalone/profile-summary.mjs <file> --buckets 5     busy share per 5 s, to find a phase
//   node bench/standalone/profile-summary.mjs <file> --from 100 --to 130   seconds 100-130 only
//
// A benchmark's manager runs several phases (connect, storms, ramp); a whole-run profile mixes
// them and is mostly idle, so the phase of interest is found with --buckets and read with
// --from/--to. Shares are of busy (non-idle) time in the window.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { from: { type: 'string' }, to: { type: 'string' }, buckets: { type: 'string' } } });
const p = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const label = (n) => { const f = n.callFrame; return `${f.functionName || '(anon)'} ${f.url.replace(/.*node_modules\//, '').replace(/.*packages\//, '')}:${f.lineNumber}`; };
const idle = (n) => n.callFrame.functionName === '(idle)';

if (values.buckets) {
  const size = Number(values.buckets) * 1e6;
  const busy = [];
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const d = p.timeDeltas[i] ?? 0;
    t += d;
    const k = Math.floor(t / size);
    busy[k] = (busy[k] ?? 0) + (idle(byId.get(p.samples[i])) ? 0 : d);
  }
  console.log(Array.from(busy, (v, k) => `${(k * size) / 1e6}s ${Math.round((100 * (v ?? 0)) / size)}%`).join('  '));
  process.exit(0);
}

const from = values.from ? Number(values.from) * 1e6 : -Infinity;
const to = values.to ? Number(values.to) * 1e6 : Infinity;
const self = new Map();
const inclusive = new Map();
/** Native leaves (writev, GC aside) by the nearest package above them: what a syscall was for. */
const nativeFor = new Map();
let total = 0;
let t = 0;
for (let i = 0; i < p.samples.length; i++) {
  const d = p.timeDeltas[i] ?? 0;
  t += d;
  const n = byId.get(p.samples[i]);
  if (t < from || t > to || idle(n)) continue;
  total += d;
  self.set(label(n), (self.get(label(n)) ?? 0) + d);
  const seen = new Set();
  let caller;
  for (let id = n.id; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id);
    const k = label(frame);
    if (!seen.has(k)) inclusive.set(k, (inclusive.get(k) ?? 0) + d);
    seen.add(k);
    if (caller === undefined && id !== n.id && frame.callFrame.url.includes('node_modules/')) caller = frame.callFrame.url.replace(/.*node_modules\//, '').split('/').slice(0, 2).join('/');
  }
  if (!n.callFrame.url) {
    const k = `${n.callFrame.functionName} ← ${caller ?? '?'}`;
    nativeFor.set(k, (nativeFor.get(k) ?? 0) + d);
  }
}
const byPackage = new Map();
for (const [k, d] of self) { const f = k.split(' ')[1].split(':')[0].split('/').slice(0, 2).join('/'); byPackage.set(f, (byPackage.get(f) ?? 0) + d); }
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, d]) => `${((100 * d) / total).toFixed(1).padStart(5)} ${k}`).join('\n');
console.log(`busy ms ${(total / 1000).toFixed(0)} (shares below are of busy time)`);
console.log(`--- self\n${top(self, 25)}`);
console.log(`--- by package/dir\n${top(byPackage, 15)}`);
console.log(`--- native leaves by the package that called them\n${top(nativeFor, 15)}`);
console.log(`--- including callees\n${top(inclusive, 30)}`);
