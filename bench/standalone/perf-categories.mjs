// Where managers' CPU goes, by part of the manager, from Linux `perf` samples: time on the CPU
// only, every thread's (V8's compiler and GC helpers included). A V8 CPU profile
// (PALLAS_BENCH_PROFILE) samples wall-clock time on the main thread, so a write that hands the
// core to the process it woke (a PostgreSQL backend, the broker) shows there as the write's.
//
//   PALLAS_BENCH_PERF=1 npm run bench -- --scenario cluster          (managers write JIT maps)
//   perf record -g -F 499 -p <pid>,<pid>,… -o /tmp/m.data -- sleep 60   (while the rounds run)
//   perf script -i /tmp/m.data -F pid,tid,time,ip,sym > /tmp/m.txt
//   node bench/standalone/perf-categories.mjs /tmp/m.txt --hz 499 --group 1234=single
//
// Processes not named with --group are summed as "others". Each sample goes to the first
// category its stack matches, in the order below: the V8 engine's own work first (compiler,
// collector), then the manager's parts by their modules, then the libraries under them.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { hz: { type: 'string', default: '499' }, group: { type: 'string', multiple: true, default: [] } } });
const hz = Number(values.hz);
const groupOf = new Map(values.group.map((g) => g.split('=')));

/** [category, test on the sample: its thread is the process's main one, and its frames leaf first]. */
const CATEGORIES = [
  ['V8 optimizing compiler', (s) => /compiler::|maglev|Maglev|turbofan|Turbofan|Zone|Pipeline|Deoptimiz/.test(s.frames[0] ?? '')],
  ['GC: major (mark, sweep)', (s) => /ConcurrentMark|MarkCompact|Marking|IncrementalMark|Sweep/.test(s.frames.slice(0, 8).join(' '))],
  ['GC: scavenge', (s) => /Scaveng|MinorMC|Evacuat/.test(s.frames.slice(0, 8).join(' '))],
  ['other helper threads', (s) => !s.main],
  ['live events: relay, bus, stream', (s) => s.frames.some((f) => /cluster-relay|parseNotificationMessage|routes\/events\.js|event-bus\.js/.test(f))],
  ['task reports', (s) => s.frames.some((f) => /task-report/.test(f))],
  ['task outbox, tasks service', (s) => s.frames.some((f) => /task-outbox|tasks-service/.test(f))],
  ['status buffer', (s) => s.frames.some((f) => /status-buffer/.test(f))],
  ['inventory', (s) => s.frames.some((f) => /device-inventory/.test(f))],
  ['MQTT in: broker, packets, router', (s) => s.frames.some((f) => /device-router|mqtt-packet\/parser|mqtt\/build\/lib\/handlers|aedes|mqemitter|qlobber|broker\/embedded/.test(f))],
  ['MQTT out', (s) => s.frames.some((f) => /broker\/external|writeToStream|mqtt\/build\/lib\/client/.test(f))],
  ['store drivers: pg, Kysely, SQLite', (s) => s.frames.some((f) => /pg-protocol|pg\/lib|pg-pool|kysely|better-sqlite|better_sqlite/.test(f))],
  ['HTTP', (s) => s.frames.some((f) => /fastify|find-my-way/.test(f))],
  ['kernel, no JavaScript above', (s) => /^[a-z_0-9.]+$/.test(s.frames[0] ?? '')],
  ['other', () => true],
];

const seconds = new Map(); // group → category → seconds
let sample;
for (const line of readFileSync(positionals[0], 'utf8').split('\n')) {
  const head = /^\s*(\d+)\/(\d+)\s+[\d.]+:\s*$/.exec(line);
  if (head) {
    if (sample) count(sample);
    sample = { group: groupOf.get(head[1]) ?? 'others', main: head[1] === head[2], frames: [] };
    continue;
  }
  const frame = /^\s+[0-9a-f]+\s+(.*)$/.exec(line);
  if (frame && sample) sample.frames.push(frame[1]);
}
if (sample) count(sample);

function count(s) {
  const [category] = CATEGORIES.find(([, test]) => test(s));
  const g = seconds.get(s.group) ?? new Map();
  seconds.set(s.group, g);
  g.set(category, (g.get(category) ?? 0) + 1 / hz);
}

const groups = [...seconds.keys()];
const cell = (v) => (v ?? 0).toFixed(2).padStart(12);
console.log(`${'CPU seconds'.padEnd(36)}${groups.map((g) => g.padStart(12)).join('')}`);
for (const [category] of CATEGORIES) console.log(`${category.padEnd(36)}${groups.map((g) => cell(seconds.get(g).get(category))).join('')}`);
console.log(`${'total'.padEnd(36)}${groups.map((g) => cell([...seconds.get(g).values()].reduce((a, b) => a + b, 0))).join('')}`);
