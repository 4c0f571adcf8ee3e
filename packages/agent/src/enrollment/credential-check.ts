import type { Logger } from '../util/line-logger.js';
import { checkApiError, checkEnrollStatusResponse } from '../checks/index.js';
import { describeError } from '../errors.js';
import { Backoff, sleep, type BackoffOptions } from '../util/backoff.js';
import { enrollUrl, postJson } from './enroll.js';

/**
 * Asks the manager (POST /api/v1/enroll/status) whether a credential the broker refused is
 * still good. An external broker refuses a device that is pending or blocked, or whose broker
 * account it lost; the manager re-makes the account from the proven secret. Only the answer
 * `credential_invalid` (401) ends in 'invalid' — and a manager that does not know the route
 * (404, a version before it), whose broker's refusal was final already. A manager that cannot
 * be reached, or fails, is asked again with backoff for as long as it takes.
 */
export async function checkRefusedCredential(options: {
  manager: string; deviceId: string; secret: string; logger: Logger;
  ca?: string | undefined; signal?: AbortSignal; backoff?: BackoffOptions;
}): Promise<'retry' | 'invalid'> {
  const url = `${enrollUrl(options.manager)}/status`;
  const backoff = new Backoff({ baseMs: 1000, capMs: 60_000, ...options.backoff });
  for (;;) {
    let problem: string;
    try {
      const timeout = AbortSignal.timeout(15_000);
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      const { res, text } = await postJson(url, JSON.stringify({ deviceId: options.deviceId, secret: options.secret }), signal, options.ca);
      const body = parse(text);
      if (res.ok && checkEnrollStatusResponse.check(body)) {
        options.logger.info({ state: body.state }, 'the manager says the credential is valid; connecting again');
        return 'retry';
      }
      const code = checkApiError.check(body) ? body.error.code : undefined;
      if (code === 'credential_invalid' || res.status === 404) return 'invalid';
      problem = `HTTP ${res.status}${code ? ` ${code}` : ''}`;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      problem = describeError((err as Error).cause ?? err);
    }
    const delayMs = backoff.next();
    options.logger.warn({ delayMs, err: problem }, 'cannot ask the manager about the refused credential; will retry');
    await sleep(delayMs, options.signal);
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
