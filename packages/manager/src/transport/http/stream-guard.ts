import type { ServerResponse } from 'node:http';
import type { Role } from '@pallas/protocol';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../errors.js';
import { authenticate, type Authenticator } from './auth.js';

/** How often every open stream's credential is checked against the store again. */
export const RECHECK_MS = 500;
/** Open event streams per user (a console tab holds one). */
export const DEFAULT_MAX_STREAMS_PER_USER = 8;

interface OpenStream {
  req: FastifyRequest;
  res: ServerResponse;
  userId: string;
  role: Role;
}

/**
 * Keeps long-lived responses (the event stream) tied to the credential that opened them.
 * Every RECHECK_MS it authenticates each open stream's request again **against the store**,
 * once per distinct credential, and ends the streams whose session was logged out or
 * expired, whose API token was revoked or expired, whose user was deleted, or whose
 * effective role changed (a demoted user reconnects with what they may see now). Checking
 * the store, rather than listening for events in this process, is what makes a revocation
 * made on another manager sharing the database end the stream here too; it costs one
 * indexed lookup per credential per half second.
 *
 * It also caps how many streams one user holds open (issue #15 point 15).
 */
export class StreamGuard {
  readonly #auth: Authenticator;
  readonly #maxPerUser: number;
  readonly #streams = new Set<OpenStream>();
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(auth: Authenticator, maxPerUser = DEFAULT_MAX_STREAMS_PER_USER) {
    this.#auth = auth;
    this.#maxPerUser = maxPerUser;
  }

  /** Throws 429 when the caller already holds its share of streams. */
  admit(req: FastifyRequest): void {
    const userId = req.user!.id;
    let n = 0;
    for (const s of this.#streams) if (s.userId === userId) n++;
    if (n >= this.#maxPerUser) {
      throw new AppError('too_many_requests', `at most ${this.#maxPerUser} event streams per user are open at once: close one`, { headers: { 'retry-after': '5' } });
    }
  }

  /** Watches a stream opened by `req` (already authenticated) until it closes. */
  watch(req: FastifyRequest, res: ServerResponse): void {
    const stream: OpenStream = { req, res, userId: req.user!.id, role: req.user!.role };
    this.#streams.add(stream);
    res.once('close', () => this.#streams.delete(stream));
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#recheck(), RECHECK_MS);
      this.#timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #recheck(): Promise<void> {
    if (this.#checking) return; // a slow store: the next tick catches up
    if (this.#streams.size === 0) {
      this.stop();
      return;
    }
    this.#checking = true;
    try {
      const byCredential = new Map<string, OpenStream[]>();
      for (const s of this.#streams) {
        const key = `${s.req.headers.authorization ?? ''}\n${s.req.headers.cookie ?? ''}`;
        byCredential.set(key, [...(byCredential.get(key) ?? []), s]);
      }
      await Promise.all([...byCredential.values()].map(async (streams) => {
        const still = await this.#stillValid(streams[0]!.req);
        for (const s of streams) {
          if (still !== null && still.id === s.userId && still.role === s.role) continue;
          this.#end(s, still === null ? 'credential-ended' : 'role-changed');
        }
      }));
    } finally {
      this.#checking = false;
    }
  }

  /** The caller now, or null when the credential no longer works. A store error keeps the stream. */
  async #stillValid(req: FastifyRequest): Promise<{ id: string; role: Role } | null> {
    const probe = { headers: req.headers, method: 'GET' } as FastifyRequest;
    try {
      await authenticate(this.#auth, probe);
      return { id: probe.user!.id, role: probe.user!.role };
    } catch (err) {
      if (err instanceof AppError && err.status === 401) return null;
      return { id: req.user!.id, role: req.user!.role };
    }
  }

  #end(s: OpenStream, why: string): void {
    this.#streams.delete(s);
    if (s.res.destroyed) return;
    // A last event says why, so a client can tell it from a dropped connection.
    s.res.end(`event: ended\ndata: ${JSON.stringify({ type: 'ended', reason: why })}\n\n`);
  }
}
