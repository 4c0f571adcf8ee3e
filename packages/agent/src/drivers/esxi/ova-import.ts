import { request } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OvaPackage } from '../../ova/ova-package.js';
import type { OperationContext } from '../driver.js';
import { DriverError, DriverErrorCodes, isDriverError } from '../driver-error.js';
import type { HostDatastore, HostNetwork, Placement } from './inventory.js';
import { child, escapeXml, list, rawXml, readMoRef, text, type MoRef, type VsphereClient, type XmlNode } from './vsphere/index.js';
import { faultError, readMethodFault } from './vsphere/faults.js';
import { retrieveOne } from './vsphere/property-collector.js';

/** How often the lease's progress is told to the host: it expires a lease that stays silent (5 min). */
const LEASE_PROGRESS_EVERY_MS = 2_000;
const LEASE_READY_TIMEOUT_MS = 120_000;

export interface ImportTarget {
  placement: Placement;
  datastore: HostDatastore;
  networks: HostNetwork[];
}

/**
 * Deploys an OVA on the host the vSphere way: `OvfManager.CreateImportSpec` (the host reads the
 * descriptor and says what it would make), `ResourcePool.ImportVApp` (creates the VM and an
 * `HttpNfcLease`), wait for the lease to be ready, send each disk file to the URL the lease gives
 * for it (streamed from the OVA, never loaded whole), telling the host `HttpNfcLeaseProgress`
 * along the way, then `HttpNfcLeaseComplete`. Any failure after the lease exists aborts it
 * (`HttpNfcLeaseAbort`, with the reason), which makes the host remove the half-made VM.
 * Progress: 0–5 % planning, 5–95 % upload (by bytes), 95–100 % completing.
 */
export async function importOva(client: VsphereClient, ova: OvaPackage, name: string, target: ImportTarget, hostUrl: URL, ctx: OperationContext): Promise<MoRef> {
  const { signal } = ctx;
  const content = await client.serviceContent({ signal });
  if (content.ovfManager === undefined) throw new DriverError(DriverErrorCodes.HOST_ERROR, 'the host has no OvfManager: it cannot import OVAs');
  ctx.progress(1, 'checking the OVF with the host');
  const fallback = target.networks[0];
  const networkMapping = ova.descriptor.networks.flatMap((n) => {
    const net = target.networks.find((h) => h.name === n) ?? fallback;
    return net === undefined ? [] : [{ name: n, network: net.ref }];
  });
  const res = await client.call(
    'CreateImportSpec',
    content.ovfManager,
    {
      ovfDescriptor: ova.ovfXml,
      resourcePool: target.placement.resourcePool,
      datastore: target.datastore.ref,
      cisp: { locale: '', deploymentOption: '', entityName: name, networkMapping, diskProvisioning: 'thin' },
    },
    { signal },
  );
  const result = child(res, 'returnval');
  const errors = list(result, 'error').map((e) => text(e, 'localizedMessage') || readMethodFault(e as XmlNode).message).filter(Boolean);
  if (errors.length > 0) throw new DriverError(DriverErrorCodes.INVALID_SPEC, `the host refuses the OVF: ${errors.join('; ')}`);
  const spec = child(result, 'importSpec');
  if (spec === undefined) throw new DriverError(DriverErrorCodes.INVALID_SPEC, 'the host made no import spec from the OVF');
  // deviceId → the file's path in the OVA.
  const files = new Map<string, { path: string; create: boolean }>();
  for (const item of list(result, 'fileItem')) {
    const id = text(item, 'deviceId');
    const path = text(item, 'path');
    if (id && path) files.set(id, { path, create: text(item, 'create') === 'true' });
  }

  ctx.progress(3, 'creating the VM');
  const leaseRes = await client.call(
    'ImportVApp',
    target.placement.resourcePool,
    {
      spec: rawXml(innerXml(spec), spec['@_type'] === undefined ? '' : ` xsi:type="${escapeXml(String(spec['@_type']).replace(/^.*:/, ''))}"`),
      folder: target.placement.vmFolder,
      host: target.placement.host,
    },
    { signal },
  );
  const lease = readMoRef(child(leaseRes, 'returnval'));
  if (lease === undefined) throw new DriverError(DriverErrorCodes.HOST_ERROR, 'ImportVApp returned no lease');

  try {
    const info = await waitForLease(client, lease, signal);
    const vm = readMoRef(child(info, 'entity'));
    if (vm === undefined) throw new DriverError(DriverErrorCodes.HOST_ERROR, 'the import lease names no VM');
    const uploads = list(info, 'deviceUrl').flatMap((d) => {
      const file = files.get(text(d, 'importKey') ?? '');
      const url = text(d, 'url');
      return file && url ? [{ ...file, url: url.replace('://*', `://${hostUrl.host}`) }] : [];
    });
    const wanted = ova.disks.filter((d) => d.href !== undefined).length;
    if (uploads.length < wanted) throw new DriverError(DriverErrorCodes.HOST_ERROR, `the host gave ${uploads.length} upload URLs for ${wanted} disks`);

    const total = Math.max(1, uploads.reduce((sum, u) => sum + (ova.disks.find((d) => d.href === u.path)?.fileBytes ?? 0), 0));
    let sent = 0;
    let lastTold = 0;
    const tell = (): void => {
      const pct = Math.min(99, Math.floor((100 * sent) / total));
      ctx.progress(5 + Math.floor((90 * sent) / total), `uploading disks: ${pct}%`);
      const now = Date.now();
      if (now - lastTold >= LEASE_PROGRESS_EVERY_MS) {
        lastTold = now;
        void client.call('HttpNfcLeaseProgress', lease, { percent: pct }, { signal }).catch(() => undefined);
      }
    };
    const session = await client.transferSession({ signal });
    for (const upload of uploads) {
      const disk = ova.disks.find((d) => d.href === upload.path);
      if (disk === undefined) throw new DriverError(DriverErrorCodes.INVALID_SPEC, `the host asks for ${upload.path}, which the OVA does not have`);
      await put(upload.url, upload.create, ova, upload.path, disk.fileBytes, session, signal, (n) => {
        sent += n;
        tell();
      });
    }
    await client.call('HttpNfcLeaseProgress', lease, { percent: 100 }, { signal });
    ctx.progress(95, 'completing the import');
    await client.call('HttpNfcLeaseComplete', lease, {}, { signal });
    return vm;
  } catch (err) {
    const reason = signal.aborted ? 'cancelled' : err instanceof Error ? err.message : String(err);
    // With the reason, so the host's log says why; the host then removes the half-made VM.
    await client
      .call('HttpNfcLeaseAbort', lease, { fault: { $type: 'LocalizedMethodFault', fault: { $type: 'SystemError', reason }, localizedMessage: reason } }, { signal: AbortSignal.timeout(10_000) })
      .catch(() => undefined);
    throw err;
  }
}

async function waitForLease(client: VsphereClient, lease: MoRef, signal: AbortSignal): Promise<XmlNode> {
  const deadline = Date.now() + LEASE_READY_TIMEOUT_MS;
  for (let delay = 100; ; delay = Math.min(1_000, delay * 2)) {
    const found = await retrieveOne(client, lease, ['state', 'info', 'error'], { signal });
    const state = found?.props.get('state');
    const stateText = typeof state === 'string' ? state : text(state);
    if (stateText === 'ready') {
      const info = found!.props.get('info');
      if (info === undefined || typeof info === 'string') throw new DriverError(DriverErrorCodes.HOST_ERROR, 'the import lease is ready but has no info');
      return info;
    }
    if (stateText === 'error') {
      const error = found!.props.get('error');
      throw error !== undefined && typeof error !== 'string' ? faultError(readMethodFault(error), 'importing the OVA') : new DriverError(DriverErrorCodes.HOST_ERROR, 'the import lease failed');
    }
    if (Date.now() > deadline) throw new DriverError(DriverErrorCodes.HOST_ERROR, `the import lease was not ready after ${LEASE_READY_TIMEOUT_MS / 1000} s`);
    await sleep(delay, undefined, { signal });
  }
}

/**
 * Sends one disk file to the lease's URL. A streamOptimized VMDK goes as the host's NFC
 * expects it (POST, `application/x-vnd.vmware-streamVmdk`); a file the host creates as is
 * (`create`) goes with PUT, as govmomi does.
 */
async function put(
  url: string,
  create: boolean,
  ova: OvaPackage,
  href: string,
  size: number,
  session: { agent: import('node:https').Agent; cookie: string | undefined },
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Promise<void> {
  const headers: Record<string, string | number> = {
    'content-length': size,
    'content-type': create ? 'application/octet-stream' : 'application/x-vnd.vmware-streamVmdk',
  };
  if (session.cookie) headers.cookie = session.cookie;
  const req = request(url, { method: create ? 'PUT' : 'POST', agent: session.agent, headers, signal });
  const answer = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) resolve();
        else reject(new DriverError(DriverErrorCodes.HOST_ERROR, `uploading ${href}: the host answered HTTP ${res.statusCode}`));
      });
    });
    req.on('error', reject);
  });
  answer.catch(() => undefined);
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  try {
    await pipeline(ova.openFile(href, signal), count, req);
    await answer;
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (isDriverError(err)) throw err;
    throw new DriverError(DriverErrorCodes.UNAVAILABLE, `uploading ${href} to the host: ${(err as Error).message}`, { cause: err });
  }
}

/** A parsed data object back to XML, for a value that returns to the host as it came. */
function innerXml(node: XmlNode): string {
  let out = '';
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('@_') || key === '#text') continue;
    for (const v of Array.isArray(value) ? value : [value]) out += elementXml(key, v);
  }
  return out;
}

function elementXml(name: string, value: unknown): string {
  if (value === null || value === undefined) return `<${name}/>`;
  if (typeof value !== 'object') return `<${name}>${escapeXml(String(value))}</${name}>`;
  const node = value as XmlNode;
  const type = node['@_type'];
  if ('#text' in node) {
    // A leaf with a type: a MoRef (`type="Datastore"`) or a typed primitive (`xsi:type="xsd:int"`).
    const attr = typeof type !== 'string' ? '' : type.includes(':') ? ` xsi:type="${escapeXml(type)}"` : ` type="${escapeXml(type)}"`;
    return `<${name}${attr}>${escapeXml(String(node['#text']))}</${name}>`;
  }
  // Prefixes other than xsd: name the vim25 namespace, the default one of the request.
  const attr = typeof type === 'string' ? ` xsi:type="${escapeXml(type.startsWith('xsd:') ? type : type.replace(/^.*:/, ''))}"` : '';
  return `<${name}${attr}>${innerXml(node)}</${name}>`;
}
