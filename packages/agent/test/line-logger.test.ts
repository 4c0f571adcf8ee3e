/**
 * The agent's and the supervisor's logger writes the lines pino would: the same fields in the
 * same order (but `time`), children's bindings included, levels filtered the same way.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { lineLogger, silentLogger, type Logger } from '../src/util/line-logger.js';

function both(level: 'info' | 'debug' | 'warn' | 'silent') {
  const ours: string[] = [];
  const theirs: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { theirs.push(String(chunk)); done(); } });
  return {
    ours: lineLogger('pallas-agent', level, (l) => ours.push(l)),
    pino: pino({ name: 'pallas-agent', level }, sink),
    lines: async () => {
      await new Promise((r) => setImmediate(r));
      const noTime = (l: string) => l.replace(/"time":\d+,/, '');
      return { ours: ours.map(noTime), theirs: theirs.map(noTime) };
    },
  };
}

describe('line logger', () => {
  it('writes what pino writes, children and levels included', async () => {
    const b = both('info');
    // A pino logger is a Logger too: the agent takes either.
    const loggers: Logger[] = [b.ours, b.pino];
    for (const log of loggers) {
      log.info('started');
      log.warn({ delayMs: 5, err: 'boom' }, 'reconnecting');
      log.debug('hidden at info');
      const child = log.child({ device: 'd-1' }).child({ component: 'downloads' });
      child.error({ path: '/x', line: 3, nested: { a: [1, 'two'] } }, 'bad "record"\nnext');
      child.info({ pid: 7 });
    }
    const { ours, theirs } = await b.lines();
    assert.equal(ours.length, 4);
    assert.deepEqual(ours, theirs);
  });

  it('writes nothing at silent, and never throws on fields it cannot serialise', async () => {
    const b = both('silent');
    b.ours.error('nothing');
    assert.deepEqual((await b.lines()).ours, []);
    const out: string[] = [];
    const log = lineLogger('x', 'debug', (l) => out.push(l));
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    log.debug({ circular }, 'still logged');
    log.info({ n: 10n });
    assert.equal(out.length, 2);
    assert.match(out[0]!, /"logError":"fields not serialisable: .*","msg":"still logged"\}\n$/);
    assert.doesNotThrow(() => JSON.parse(out[1]!));
    silentLogger.child({ a: 1 }).error('nothing');
  });
});
