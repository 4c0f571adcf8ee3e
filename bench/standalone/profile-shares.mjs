// Shares of a manager's .cpuprofile by kind of work, each sample counted once under the first
// rule its stack meets (leaf rules first, then the stack from the leaf up), so that the shares
// add up to the whole: what profile-summary.mjs's self times cannot say (Fastify's hooks or
// Kysely's driver are inclusive stacks, SQLite's work is the self time of one driver function).
// Module loading at start is counted apart, so that a short run's shares are the requests'.
//
//   node bench/standalone/profile-shares.mjs <file.cpuprofile> [CPU µs per request]
//
// With the manager's CPU per request (enroll-api.ts prints it), each share is also given in µs
// per request. The profile samples wall time on the main thread: a blocking call (an fsync in
// a WAL checkpoint) counts, a CPU the neighbours took does not, so µs are an estimate.
import { readFileSync } from 'node:fs';

const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const perRequestUs = Number(process.argv[3] ?? 0);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const timeOf = new Map();
for (let i = 0; i < p.samples.length; i++) timeOf.set(p.samples[i], (timeOf.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const frame = (n) => { const f = n.callFrame; return `${f.functionName || '(anon)'}@${f.url.replace(/.*node_modules\//, '').replace(/.*packages\//, '')}`; };

const LEAF = [
  ['idle', /^\(idle\)/], ['GC', /^\(garbage collector\)/], ['V8 other ("program")', /^\(program\)/],
  ['SQLite', /^executeQuery@kysely\/dist\/esm\/dialect\/sqlite/],
  ['socket writes', /^(writev|writeBuffer|writeUtf8String|writeLatin1String)@$/],
  ['random bytes', /^(randomFillSync|randomBytes)@/], ['SHA-256', /^(Hash|update|digest|hash)@node:internal\/crypto\/hash/],
];
const STACK = [
  ['start-up (module loading, plugins)', /modules\/esm|modules\/cjs|compileSourceTextModule|avvio|compileSchemasFor/],
  ['audit records (JS)', /audit-service/], ['pino log', /pino\//], ['metrics', /prom-client/],
  ['request validation', /ajv\/|typebox\/|validation\.js/],
  ['response serialization', /fast-json-stringify|serialize/],
  ['JSON parse', /secure-json-parse/],
  ['slow-body watch', /slow-body/],
  ['Kysely (not SQLite)', /kysely\//], ['group commit (JS)', /group-commit/],
  ['enrollment service (JS)', /enrollment-service/], ['manager, other', /manager\/dist/],
  ['routing', /find-my-way/], ['Fastify', /fastify\//],
  ['node:http and streams', /_http_|http_common|streams|net$/],
];
// SQLite's time split by what called it.
const sqliteBy = (chain) => (chain.some((k) => /audit-service/.test(k)) ? 'SQLite: audit batch'
  : chain.some((k) => /commitTransaction/.test(k)) ? 'SQLite: commit'
  : 'SQLite: statements and savepoints');

const shares = new Map();
let total = 0;
for (const [id, t] of timeOf) {
  total += t;
  const chain = [];
  for (let x = id; x !== undefined; x = parent.get(x)) chain.push(frame(byId.get(x)));
  let kind = LEAF.find(([, r]) => r.test(chain[0]))?.[0];
  if (kind === 'SQLite') kind = sqliteBy(chain);
  if (!kind) for (const k of chain) { const m = STACK.find(([, r]) => r.test(k)); if (m) { kind = m[0]; break; } }
  kind ??= 'other';
  shares.set(kind, (shares.get(kind) ?? 0) + t);
}
const startup = shares.get('start-up (module loading, plugins)') ?? 0;
const busy = total - (shares.get('idle') ?? 0) - startup;
console.log(`profile ${(total / 1e3).toFixed(0)} ms: idle ${(100 * (shares.get('idle') ?? 0) / total).toFixed(1)} %, start-up ${(100 * startup / total).toFixed(1)} %; shares below are of the rest (${(busy / 1e3).toFixed(0)} ms)`);
for (const [kind, t] of [...shares].sort((a, b) => b[1] - a[1])) {
  if (kind === 'idle' || t === startup) continue;
  const share = t / busy;
  console.log(`${(100 * share).toFixed(1).padStart(5)} %${perRequestUs ? `  ~${(share * perRequestUs).toFixed(0).padStart(3)} µs` : ''}  ${kind}`);
}
