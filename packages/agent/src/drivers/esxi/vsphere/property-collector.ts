import type { CallOptions, VsphereClient } from './soap-client.js';
import { child, list, moRef, readMoRef, text, type MoRef, type XmlNode } from './xml.js';

/** One object's properties, by property path (`summary.runtime.powerState`). */
export interface ObjectContent {
  obj: MoRef;
  /** The `val` element of each property the host returned (absent: unset on the host). */
  props: Map<string, XmlNode | string>;
}

/** Page size asked of the host; it may return fewer and a token for the rest. */
const MAX_OBJECTS = 500;

/**
 * Reads `paths` of every object of `type` under `root` (a folder, recursively), through a
 * ContainerView that lives only for this read. On an ESXi host the root folder holds the one
 * datacenter, so this finds every VM, datastore or network of the host.
 */
export async function retrieveAll(client: VsphereClient, root: MoRef, type: string, paths: string[], opts: CallOptions = {}): Promise<ObjectContent[]> {
  const content = await client.serviceContent(opts);
  const viewManager = content.viewManager;
  const created = await client.call('CreateContainerView', viewManager, { container: root, type, recursive: true }, opts);
  const view = readMoRef(child(created, 'returnval'))!;
  try {
    return await retrieve(
      client,
      {
        propSet: [{ type, all: false, pathSet: paths }],
        objectSet: [
          {
            obj: view,
            skip: true,
            selectSet: [{ $type: 'TraversalSpec', name: 'view', type: 'ContainerView', path: 'view', skip: false }],
          },
        ],
      },
      opts,
    );
  } finally {
    await client.call('DestroyView', view, {}, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
  }
}

/** Reads `paths` of one object. Rejects `not_found` (ManagedObjectNotFound) if it is gone. */
export async function retrieveOne(client: VsphereClient, obj: MoRef, paths: string[], opts: CallOptions = {}): Promise<ObjectContent | undefined> {
  const found = await retrieve(client, { propSet: [{ type: obj.type, all: false, pathSet: paths }], objectSet: [{ obj, skip: false }] }, opts);
  return found[0];
}

/** `RetrievePropertiesEx` then `ContinueRetrievePropertiesEx` until the host has no more pages. */
export async function retrieve(client: VsphereClient, specSet: Record<string, unknown>, opts: CallOptions = {}): Promise<ObjectContent[]> {
  const { propertyCollector } = await client.serviceContent(opts);
  const out: ObjectContent[] = [];
  let res = await client.call('RetrievePropertiesEx', propertyCollector, { specSet, options: { maxObjects: MAX_OBJECTS } }, opts);
  for (;;) {
    const page = child(res, 'returnval');
    for (const o of list(page, 'objects')) out.push(readObject(o as XmlNode));
    const token = text(page, 'token');
    if (token === undefined || token === '') return out;
    res = await client.call('ContinueRetrievePropertiesEx', propertyCollector, { token }, opts);
  }
}

function readObject(node: XmlNode): ObjectContent {
  const props = new Map<string, XmlNode | string>();
  for (const p of list(node, 'propSet')) {
    const name = text(p, 'name');
    const val = list(p, 'val')[0];
    if (name !== undefined && val !== undefined) props.set(name, val as XmlNode | string);
  }
  return { obj: readMoRef(child(node, 'obj')) ?? moRef('Unknown', ''), props };
}
