import { Transform } from 'node:stream';
import type { ArtifactKind } from '@pallas/protocol';
import { XMLParser } from 'fast-xml-parser';
import { TarFormatError, TarStreamReader, type TarMember } from './tar-stream-reader.js';

/**
 * What an upload must be for its kind (docs/artifacts.md#what-each-kind-must-be), checked as
 * the bytes pass to the store, never by buffering the file:
 *
 * - `ova`: a tar with exactly one `.ovf` descriptor (at most 4 MiB, as the agent reads it),
 *   well-formed, with one virtual system, whose disks' files are listed in `<References>` and
 *   present in the archive.
 * - `agent`: a bundle made by `packages/agent/scripts/bundle.mjs`, whose first line names it
 *   and its version: `// pallas-agent <version>`, the version the upload is labelled with.
 * - `patch`: a tar whose first file is `pallas-patch.json`, a JSON object with the patch's
 *   `version` (the upload's), then the payload.
 *
 * The kind comes from the request, never from the file name.
 */
export class ArtifactContentError extends Error {
  override readonly name = 'ArtifactContentError';
}

const MAX_DESCRIPTOR_BYTES = 4 << 20;
export const PATCH_DESCRIPTOR = 'pallas-patch.json';
const AGENT_FIRST_LINE = /^\/\/ pallas-agent ([A-Za-z0-9][A-Za-z0-9._+~-]{0,127})\r?\n/;

const xml = new XMLParser({
  ignoreAttributes: false, attributeNamePrefix: '@', removeNSPrefix: true, parseTagValue: false, processEntities: false,
  isArray: (name) => ['File', 'Disk', 'VirtualSystem'].includes(name),
});

type Node = Record<string, unknown>;
const arr = (v: unknown): Node[] => (Array.isArray(v) ? (v as Node[]) : v === undefined || v === null ? [] : [v as Node]);
const attr = (n: Node, key: string): string | undefined => (typeof n[key] === 'string' ? (n[key] as string).trim() : undefined);

function checkOva(members: TarMember[]): void {
  const ovfs = members.filter((m) => m.name.toLowerCase().endsWith('.ovf'));
  if (ovfs.length === 0) throw new ArtifactContentError('the OVA (a tar archive) has no .ovf descriptor');
  if (ovfs.length > 1) throw new ArtifactContentError(`the OVA has ${ovfs.length} .ovf descriptors (${ovfs.map((m) => m.name).join(', ')}); it needs exactly one`);
  const ovf = ovfs[0]!;
  let env: Node | undefined;
  try {
    env = (xml.parse(ovf.data!.toString('utf8'), true) as Node)['Envelope'] as Node | undefined;
  } catch (err) {
    throw new ArtifactContentError(`the descriptor ${ovf.name} is not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!env || typeof env !== 'object') throw new ArtifactContentError(`the descriptor ${ovf.name} has no <Envelope>: it is not an OVF descriptor`);
  const systems = [...arr(env['VirtualSystem']), ...arr((env['VirtualSystemCollection'] as Node | undefined)?.['VirtualSystem'])];
  if (systems.length !== 1) throw new ArtifactContentError(`the descriptor ${ovf.name} has ${systems.length} virtual systems; Pallas deploys one VM per OVA`);
  const files = new Map<string, string>();
  for (const f of arr((env['References'] as Node | undefined)?.['File'])) {
    const id = attr(f, '@id');
    const href = attr(f, '@href');
    if (id && href) files.set(id, href);
  }
  const inArchive = new Set(members.map((m) => m.name));
  const missing: string[] = [];
  for (const d of arr((env['DiskSection'] as Node | undefined)?.['Disk'])) {
    const ref = attr(d, '@fileRef');
    if (ref === undefined) continue; // a blank disk
    const href = files.get(ref);
    if (href === undefined) throw new ArtifactContentError(`disk ${attr(d, '@diskId') ?? '?'} refers to file "${ref}", which the descriptor's <References> does not list`);
    if (!inArchive.has(href)) missing.push(href);
  }
  if (missing.length > 0) throw new ArtifactContentError(`the descriptor refers to disk file${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, not in the archive`);
}

function checkPatch(members: TarMember[], version: string): void {
  const d = members[0];
  if (!d || d.name !== PATCH_DESCRIPTOR) throw new ArtifactContentError(`a patch is a tar whose first file is ${PATCH_DESCRIPTOR}; this one has none`);
  let json: unknown;
  try {
    json = JSON.parse(d.data!.toString('utf8'));
  } catch {
    throw new ArtifactContentError(`${PATCH_DESCRIPTOR} is not valid JSON`);
  }
  const v = (json as { version?: unknown } | null)?.version;
  if (typeof v !== 'string' || v === '') throw new ArtifactContentError(`${PATCH_DESCRIPTOR} does not name the patch's version ("version": "…")`);
  if (v !== version) throw new ArtifactContentError(`${PATCH_DESCRIPTOR} says version ${v}, but the upload is labelled version ${version}`);
}

/**
 * A pass-through stream that checks the bytes of an upload of `kind` on their way: it fails
 * (an `ArtifactContentError`) as soon as they cannot be such an artifact, else at the end.
 */
export function artifactChecker(kind: ArtifactKind, version: string): Transform {
  if (kind === 'agent') {
    let head = Buffer.alloc(0);
    let decided = false;
    const decide = (final: boolean): void => {
      const text = head.toString('latin1');
      const m = AGENT_FIRST_LINE.exec(text);
      if (m) {
        if (m[1] !== version) throw new ArtifactContentError(`the agent bundle names version ${m[1]}, but the upload is labelled version ${version}`);
        decided = true;
      } else if (final || text.includes('\n') || head.length >= 256) {
        throw new ArtifactContentError('it is not a pallas-agent bundle: its first line must be "// pallas-agent <version>" (build it with packages/agent/scripts/bundle.mjs)');
      }
    };
    return new Transform({
      transform(chunk: Buffer, _enc, done) {
        try {
          if (!decided) {
            head = Buffer.concat([head, chunk.subarray(0, 256)]).subarray(0, 256);
            decide(false);
          }
          done(null, chunk);
        } catch (err) {
          done(err as Error);
        }
      },
      flush(done) {
        try {
          if (!decided) decide(true);
          done();
        } catch (err) {
          done(err as Error);
        }
      },
    });
  }
  const reader = new TarStreamReader({
    keep: (name) => (kind === 'ova' ? (name.toLowerCase().endsWith('.ovf') ? MAX_DESCRIPTOR_BYTES : undefined) : name === PATCH_DESCRIPTOR ? 64 * 1024 : undefined),
    onMember: (m, i) => {
      if (kind === 'patch' && i === 0 && m.name !== PATCH_DESCRIPTOR) throw new ArtifactContentError(`a patch is a tar whose first file is ${PATCH_DESCRIPTOR}; this one starts with ${m.name}`);
    },
  });
  const wrap = (err: unknown): Error => (err instanceof TarFormatError ? new ArtifactContentError(err.message) : (err as Error));
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      try {
        reader.write(chunk);
        done(null, chunk);
      } catch (err) {
        done(wrap(err));
      }
    },
    flush(done) {
      try {
        const members = reader.end();
        if (kind === 'ova') checkOva(members);
        else checkPatch(members, version);
        done();
      } catch (err) {
        done(wrap(err));
      }
    },
  });
}
