import { request, type Agent } from 'node:https';
import { DriverError, DriverErrorCodes, isDriverError } from '../../driver-error.js';
import { VsphereFault, faultError, readSoapFault } from './faults.js';
import { CertificateMismatchError, createHostAgent, type CertificateTrust } from './tls-agent.js';
import { child, envelope, moRef, parseXml, readMoRef, text, toXml, type MoRef, type XmlNode } from './xml.js';

export interface VsphereClientOptions extends CertificateTrust {
  /** The host: `https://esxi.example:443` (the SDK path `/sdk` is added when missing). */
  url: string;
  user: string;
  password: string;
  /** Deadline of one SOAP call in ms (a task is many calls). Default 60,000. */
  callTimeoutMs?: number;
  /** Told once, when the client is built with `insecure` and no thumbprint or CA. */
  warn?: (message: string) => void;
}

/** The references from `ServiceInstance.RetrieveServiceContent` that the driver uses. */
export interface ServiceContent {
  apiVersion: string;
  fullName: string;
  version: string;
  build: string;
  rootFolder: MoRef;
  propertyCollector: MoRef;
  sessionManager: MoRef;
  ovfManager?: MoRef;
  fileManager?: MoRef;
  virtualDiskManager?: MoRef;
  viewManager: MoRef;
}

export interface CallOptions {
  /** Aborts the call: rejects with `signal.reason`. */
  signal?: AbortSignal;
}

const DEFAULT_CALL_TIMEOUT_MS = 60_000;
const SERVICE_INSTANCE = moRef('ServiceInstance', 'ServiceInstance');

/**
 * A vSphere Web Services (SOAP) client: one HTTPS keep-alive connection pool, one session.
 *
 * The session is opened by the first call (`SessionManager.Login`) and kept by its cookie; when
 * the host forgets it (expired, host restarted) a call fails with `NotAuthenticated`, and the
 * client logs in again once and repeats the call. Calls that cannot reach the host reject with
 * `unavailable`; host faults reject with a `DriverError` (see faults.ts) whose `cause` is the
 * `VsphereFault`. The client has no other state: after the host comes back, the next call works.
 */
export class VsphereClient {
  readonly #url: URL;
  readonly #user: string;
  readonly #password: string;
  readonly #timeoutMs: number;
  readonly #agent: Agent;
  #cookie: string | undefined;
  #content: ServiceContent | undefined;
  #login: Promise<void> | undefined;
  #closed = false;

  constructor(options: VsphereClientOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'https:') throw new DriverError(DriverErrorCodes.INVALID_SPEC, `esxi url must be https://, got ${options.url}`);
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/sdk';
    url.username = '';
    url.password = '';
    this.#url = url;
    this.#user = options.user;
    this.#password = options.password;
    this.#timeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#agent = createHostAgent(options);
    if (options.insecure === true && options.thumbprint === undefined && options.ca === undefined) {
      options.warn?.(`esxi: certificate verification of ${url.host} is OFF (insecure); anyone on the path can read the host password`);
    }
  }

  get host(): string {
    return this.#url.host;
  }

  /** The service content (cached after the first read). */
  async serviceContent(opts: CallOptions = {}): Promise<ServiceContent> {
    if (this.#content === undefined) {
      const res = await this.#send('RetrieveServiceContent', toXml('_this', SERVICE_INSTANCE), opts);
      this.#content = readServiceContent(child(res, 'returnval'));
    }
    return this.#content;
  }

  /**
   * Calls `method` on `target` with the body's fields (in schema order, see `toXml`). Logs in
   * first if there is no session; on `NotAuthenticated`, logs in again and repeats once.
   * Resolves with the parsed `<methodResponse>` element.
   */
  async call(method: string, target: MoRef, body: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<XmlNode> {
    const xml = toXml('_this', target) + Object.entries(body).map(([k, v]) => toXml(k, v)).join('');
    await this.#ensureSession(opts);
    const session = this.#cookie;
    try {
      return await this.#send(method, xml, opts);
    } catch (err) {
      if (!isNotAuthenticated(err)) throw err;
      // Only the first of several concurrent calls that found the session gone starts a new
      // one; the others wait for it (a second login would orphan what the first one made,
      // such as a property collector's container view, which belongs to its session).
      if (this.#cookie === session) this.#cookie = undefined;
      await this.#ensureSession(opts);
      return this.#send(method, xml, opts);
    }
  }

  /** Logs in now (rather than on the first call), e.g. to check credentials. */
  async login(opts: CallOptions = {}): Promise<void> {
    this.#cookie = undefined;
    await this.#ensureSession(opts);
  }

  /** Logs out (best effort) and closes the connections. Calls after this reject with `unavailable`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#cookie !== undefined && this.#content !== undefined) {
      await this.#send('Logout', toXml('_this', this.#content.sessionManager), { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    }
    this.#closed = true;
    this.#agent.destroy();
  }

  async #ensureSession(opts: CallOptions): Promise<void> {
    if (this.#cookie !== undefined) return;
    // Concurrent calls share one login.
    this.#login ??= this.#doLogin(opts).finally(() => {
      this.#login = undefined;
    });
    return this.#login;
  }

  async #doLogin(opts: CallOptions): Promise<void> {
    // The service content is re-read at each login: a host that restarted may have a new version.
    this.#content = undefined;
    const content = await this.serviceContent(opts);
    try {
      await this.#send(
        'Login',
        toXml('_this', content.sessionManager) + toXml('userName', this.#user) + toXml('password', this.#password),
        opts,
        true,
      );
    } catch (err) {
      if (isDriverError(err) && err.cause instanceof VsphereFault && err.cause.faultType === 'InvalidLogin') {
        throw new DriverError(DriverErrorCodes.UNAVAILABLE, `ESXi host ${this.host} refused the login of user "${this.#user}": ${err.cause.message}`, { cause: err.cause });
      }
      throw err;
    }
  }

  /** One POST of one SOAP envelope. `keepCookie`: store the session cookie the response sets. */
  async #send(method: string, bodyXml: string, opts: CallOptions, keepCookie = false): Promise<XmlNode> {
    try {
      return await this.#post(method, bodyXml, opts, keepCookie);
    } catch (err) {
      // A kept-alive socket the host closed while idle (or that died with a host restart)
      // fails at once with ECONNRESET before the host read the request: send once more on a
      // fresh socket, as Node's documentation advises for reused sockets.
      if (!(err instanceof StaleSocketError)) throw err;
      return this.#post(method, bodyXml, opts, keepCookie, false);
    }
  }

  #post(method: string, bodyXml: string, opts: CallOptions, keepCookie: boolean, mayRetry = true): Promise<XmlNode> {
    if (this.#closed) return Promise.reject(new DriverError(DriverErrorCodes.UNAVAILABLE, 'esxi driver is closed'));
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const payload = envelope(method, bodyXml);
    const action = this.#content !== undefined ? `urn:vim25/${this.#content.apiVersion}` : 'urn:vim25';
    return new Promise<XmlNode>((resolve, reject) => {
      const headers: Record<string, string | number> = {
        'content-type': 'text/xml; charset=utf-8',
        soapaction: action,
        'content-length': Buffer.byteLength(payload),
      };
      if (this.#cookie !== undefined) headers.cookie = this.#cookie;
      const req = request(this.#url, { method: 'POST', agent: this.#agent, headers, timeout: this.#timeoutMs });
      let settled = false;
      const finish = (err: unknown, value?: XmlNode): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err !== undefined) reject(err);
        else resolve(value!);
      };
      const onAbort = (): void => {
        finish(signal!.reason);
        req.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('timeout', () => {
        finish(new DriverError(DriverErrorCodes.UNAVAILABLE, `ESXi host ${this.host} did not answer ${method} within ${this.#timeoutMs} ms`));
        req.destroy();
      });
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code;
        if (mayRetry && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) finish(new StaleSocketError(err.message));
        else finish(this.#connectionError(method, err));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish(this.#connectionError(method, err)));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (keepCookie) {
            const setCookie = res.headers['set-cookie']?.[0];
            if (setCookie !== undefined) this.#cookie = setCookie.split(';')[0];
          }
          try {
            finish(undefined, this.#readResponse(method, res.statusCode ?? 0, body));
          } catch (err) {
            finish(err);
          }
        });
      });
      req.end(payload);
    });
  }

  #readResponse(method: string, status: number, body: string): XmlNode {
    let doc: XmlNode;
    try {
      doc = parseXml(body);
    } catch (err) {
      throw new DriverError(DriverErrorCodes.HOST_ERROR, `ESXi host ${this.host} sent an unreadable answer to ${method} (HTTP ${status})`, { cause: err });
    }
    const soapBody = child(child(doc, 'Envelope'), 'Body');
    if (soapBody === undefined) {
      throw new DriverError(
        status === 404 ? DriverErrorCodes.UNAVAILABLE : DriverErrorCodes.HOST_ERROR,
        `ESXi host ${this.host} answered ${method} with HTTP ${status} and no SOAP body (is ${this.#url.pathname} its SDK endpoint?)`,
      );
    }
    const fault = child(soapBody, 'Fault');
    if (fault !== undefined) throw faultError(readSoapFault(fault), `${method} on ESXi host ${this.host} failed`);
    return child(soapBody, `${method}Response`) ?? {};
  }

  #connectionError(method: string, err: Error): DriverError {
    if (err instanceof CertificateMismatchError) {
      return new DriverError(DriverErrorCodes.UNAVAILABLE, `ESXi host ${this.host} refused: ${err.message} (check the host, or the thumbprint in the config)`, { cause: err });
    }
    const code = (err as NodeJS.ErrnoException).code;
    const why = code !== undefined ? `${code}: ${err.message}` : err.message;
    return new DriverError(DriverErrorCodes.UNAVAILABLE, `ESXi host ${this.host} unreachable (${method}): ${why}`, { cause: err });
  }
}

class StaleSocketError extends Error {}

function isNotAuthenticated(err: unknown): boolean {
  return isDriverError(err) && err.cause instanceof VsphereFault && err.cause.faultType === 'NotAuthenticated';
}

function readServiceContent(node: XmlNode | undefined): ServiceContent {
  const about = child(node, 'about');
  const ref = (key: string): MoRef | undefined => readMoRef(child(node, key));
  const required = (key: string): MoRef => {
    const r = ref(key);
    if (r === undefined) throw new DriverError(DriverErrorCodes.HOST_ERROR, `the host's service content has no ${key}`);
    return r;
  };
  const content: ServiceContent = {
    apiVersion: text(about, 'apiVersion') ?? '6.7',
    fullName: text(about, 'fullName') ?? '',
    version: text(about, 'version') ?? '',
    build: text(about, 'build') ?? '',
    rootFolder: required('rootFolder'),
    propertyCollector: required('propertyCollector'),
    sessionManager: required('sessionManager'),
    viewManager: required('viewManager'),
  };
  const optional = { ovfManager: ref('ovfManager'), fileManager: ref('fileManager'), virtualDiskManager: ref('virtualDiskManager') };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) (content as unknown as Record<string, MoRef>)[k] = v;
  return content;
}
