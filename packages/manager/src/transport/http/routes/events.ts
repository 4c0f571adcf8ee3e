import type { ServerResponse } from 'node:http';
import type { NumberedEvent } from '../../../services/live/event-bus.js';
import type { App, RouteContext } from '../context.js';
import { serve } from '../serve.js';
import { StreamGuard } from '../stream-guard.js';

const KEEPALIVE_MS = 15_000;
/** A client that stops reading is cut off rather than buffered without limit. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * `GET /api/v1/events`: server-sent events of task, device and inventory changes. Events carry
 * ids; `Last-Event-ID` replays what a client missed while it reconnected, or sends `reset`
 * when those events are no longer buffered (the client reloads its lists).
 */
export async function eventRoutes(app: App, ctx: RouteContext): Promise<void> {
  const open = new Set<ServerResponse>();
  // Each stream stays tied to its credential: it ends within a second of logout, revocation,
  // deletion or a role change, also one made on another manager (stream-guard.ts).
  const guard = new StreamGuard({ sessions: ctx.sessions, apiTokens: ctx.apiTokens });
  // Streams never go idle, so the server would wait for them forever on close.
  app.addHook('preClose', async () => {
    guard.stop();
    for (const res of open) res.end();
  });

  serve(app, ctx, 'followEvents', async (req, reply) => {
    const { deviceId, taskId, rolloutId } = req.query;
    // By type first: an event relayed from another manager is parsed only when a filter must
    // look inside it.
    const wanted = (n: NumberedEvent): boolean => {
      if (n.type === 'reset' || (!taskId && !rolloutId && !deviceId)) return true;
      if ((taskId && n.type !== 'task') || (rolloutId && n.type !== 'rollout')) return false;
      const e = n.event;
      if (taskId) return e.type === 'task' && e.task.id === taskId;
      if (rolloutId) return e.type === 'rollout' && e.rollout.id === rolloutId;
      switch (e.type) {
        case 'task': return e.task.deviceId === deviceId;
        case 'device': return e.device.id === deviceId;
        case 'vms': return e.deviceId === deviceId;
        case 'rollout': return false;
        case 'reset': return true;
      }
    };
    guard.admit(req);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Tells nginx-style proxies not to buffer the stream.
      'x-accel-buffering': 'no',
    });
    open.add(res);
    guard.watch(req, res);
    // Events of one turn of the event loop go out in one write: a fan-out emits thousands at
    // once, and a write (a syscall and a chunk frame) per event cost more than the events.
    let pending: string[] = [];
    const flush = (): void => {
      const text = pending.join('');
      pending = [];
      if (!res.destroyed) res.write(text);
    };
    const send = (event: NumberedEvent): void => {
      if (!wanted(event)) return;
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.destroy();
        return;
      }
      if (pending.length === 0) setImmediate(flush);
      // The event's JSON is made once for every client and the relay (NumberedEvent).
      pending.push(`id: ${event.id}\nevent: ${event.type}\ndata: ${event.json}\n\n`);
    };
    res.write('retry: 2000\n: connected\n\n');
    const lastId = req.headers['last-event-id'];
    if (typeof lastId === 'string' && lastId !== '') {
      const missed = ctx.events.since(lastId);
      if (missed === null) res.write('event: reset\ndata: {"type":"reset"}\n\n');
      else for (const e of missed) send(e);
    }
    const unsubscribe = ctx.events.subscribe(send);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    res.on('close', () => {
      clearInterval(keepalive);
      unsubscribe();
      open.delete(res);
    });
  });
}
