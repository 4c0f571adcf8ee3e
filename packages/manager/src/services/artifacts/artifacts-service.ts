import { randomBytes } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';
import {
  ACTIVE_TASK_STATES, type Artifact, type ArtifactGrant, type ArtifactKind, type ArtifactManifest, type ArtifactQuery, type DownloadUrl, type PageOf, type SignedArtifact,
  type SigningKey, type UploadArtifactQuery,
} from '@pallas/protocol';
import type { Logger } from 'pino';
import { ArtifactTooLargeError, type ArtifactStore, type ByteRange } from '../../artifact-store/artifact-store.js';
import { AppError, notFound } from '../../errors.js';
import type { ArtifactsTable } from '../../store/schema.js';
import type { Db, Store } from '../../store/store.js';
import { ArtifactContentError, artifactChecker } from './artifact-check.js';
import type { DownloadUrlSigner, ManifestSigner } from './manager-keys.js';

export const ARTIFACT_ID_PREFIX = 'art';
// Lower-case hex: ids end up in file names on devices and are read out over the phone; the
// protocol's ArtifactId also accepts the base64url ids managers made before.
const newArtifactId = () => `${ARTIFACT_ID_PREFIX}_${randomBytes(12).toString('hex')}`;

function toArtifact(r: ArtifactsTable): Artifact {
  return {
    id: r.id, kind: r.kind as Artifact['kind'], name: r.name, version: r.version, size: Number(r.size), sha256: r.sha256,
    createdAt: r.created_at, createdBy: r.created_by,
  };
}

export function manifestOf(a: Artifact): ArtifactManifest {
  return { id: a.id, kind: a.kind, name: a.name, version: a.version, size: a.size, sha256: a.sha256 };
}

export interface ArtifactsDeps {
  store: Store;
  blobs: ArtifactStore;
  signer: ManifestSigner;
  urls: DownloadUrlSigner;
  /** Largest upload accepted. */
  maxBytes: number;
  logger: Logger;
  now?: () => number;
}

/**
 * Artifacts: uploads streamed into the artifact store with their SHA-256, signed manifests,
 * and the signed per-device download URLs tasks hand to agents. A row is written only after
 * the bytes are complete and renamed into place; a failed upload leaves neither.
 */
export class ArtifactsService {
  readonly #db: Db;
  readonly #read: Db;
  readonly #blobs: ArtifactStore;
  readonly #signer: ManifestSigner;
  readonly #urls: DownloadUrlSigner;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly maxBytes: number;

  constructor(deps: ArtifactsDeps) {
    this.#db = deps.store.write;
    this.#read = deps.store.read;
    this.#blobs = deps.blobs;
    this.#signer = deps.signer;
    this.#urls = deps.urls;
    this.#logger = deps.logger;
    this.#now = deps.now ?? Date.now;
    this.maxBytes = deps.maxBytes;
  }

  get signingKey(): SigningKey {
    return this.#signer.publicKey;
  }

  async #findByLabel(meta: UploadArtifactQuery): Promise<ArtifactsTable | undefined> {
    return this.#db.selectFrom('artifacts').selectAll()
      .where('kind', '=', meta.kind).where('name', '=', meta.name).where('version', '=', meta.version).executeTakeFirst();
  }

  /** Refuses before any byte is read: a duplicate, or a declared length over the limit. */
  async checkUpload(meta: UploadArtifactQuery, declaredBytes: number | undefined): Promise<void> {
    if (declaredBytes !== undefined && declaredBytes > this.maxBytes) {
      throw new AppError('payload_too_large', `the upload (${declaredBytes} bytes) is larger than the limit of ${this.maxBytes} bytes (maxArtifactBytes)`);
    }
    const existing = await this.#findByLabel(meta);
    if (existing) throw new AppError('conflict', `artifact ${meta.kind} ${meta.name} ${meta.version} already exists (${existing.id}); delete it first or use another version`);
  }

  /**
   * Streams `source` into the store, hashing on the way, then signs and records it. On any
   * failure (a cut, the size limit) the partial bytes are gone when this rejects.
   */
  async upload(meta: UploadArtifactQuery, source: Readable, createdBy: string): Promise<SignedArtifact> {
    const id = newArtifactId();
    let stored;
    // The bytes are checked for their kind on their way to the store (never buffered): the
    // store's write fails, and leaves nothing, the moment they cannot be such an artifact.
    const checked = pipeline(source, artifactChecker(meta.kind, meta.version), () => undefined);
    try {
      stored = await this.#blobs.put(id, checked, { maxBytes: this.maxBytes });
    } catch (err) {
      if (err instanceof ArtifactContentError) {
        throw new AppError('invalid_artifact', `the upload is not a valid ${meta.kind} artifact: ${err.message}; nothing was kept`);
      }
      if (err instanceof ArtifactTooLargeError) {
        throw new AppError('payload_too_large', `the upload is larger than the limit of ${this.maxBytes} bytes (maxArtifactBytes); nothing was kept`);
      }
      throw err;
    }
    const artifact: Artifact = { id, ...meta, size: stored.size, sha256: stored.sha256, createdAt: new Date(this.#now()).toISOString(), createdBy };
    const signature = this.#signer.sign(manifestOf(artifact));
    try {
      await this.#db.insertInto('artifacts').values({
        id, kind: artifact.kind, name: artifact.name, version: artifact.version, size: artifact.size, sha256: artifact.sha256,
        signature, key_id: this.#signer.publicKey.keyId, created_at: artifact.createdAt, created_by: createdBy,
      }).execute();
    } catch (err) {
      await this.#blobs.delete(id);
      // The same label uploaded twice at once: the unique index lets one of them in.
      if (await this.#findByLabel(meta)) throw new AppError('conflict', `artifact ${meta.kind} ${meta.name} ${meta.version} already exists`);
      throw err;
    }
    this.#logger.info({ artifact: id, kind: meta.kind, name: meta.name, version: meta.version, size: stored.size }, 'artifact uploaded');
    return this.#signed(artifact, signature, this.#signer.publicKey.keyId);
  }

  #signed(a: Artifact, signature: string, keyId: string): SignedArtifact {
    return { ...a, manifest: manifestOf(a), signature, keyId };
  }

  async list(q: ArtifactQuery): Promise<PageOf<Artifact>> {
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    let base = this.#read.selectFrom('artifacts');
    if (q.kind) base = base.where('kind', '=', q.kind);
    if (q.name) base = base.where('name', '=', q.name);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset(offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toArtifact), total: Number(count.n), limit, offset };
  }

  async get(id: string): Promise<SignedArtifact> {
    const row = await this.#db.selectFrom('artifacts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('artifact', id);
    return this.#signed(toArtifact(row), row.signature, row.key_id);
  }

  /** The tasks not yet final whose operation names the artifact. */
  async activeTasksUsing(id: string): Promise<string[]> {
    // Artifact ids are random and long: a substring match on the operation JSON cannot hit
    // anything else, and it finds the id wherever a task kind puts it.
    const rows = await this.#db.selectFrom('tasks').select('id')
      .where('state', 'in', [...ACTIVE_TASK_STATES]).where('operation', 'like', `%"${id}"%`).limit(10).execute();
    return rows.map((r) => r.id);
  }

  /** Deletes the artifact, unless a queued, sent or running task uses it (409). */
  async delete(id: string): Promise<Artifact> {
    const artifact = await this.get(id);
    const users = await this.activeTasksUsing(id);
    if (users.length > 0) {
      throw new AppError('conflict', `artifact ${id} is used by task${users.length > 1 ? 's' : ''} ${users.join(', ')} that ${users.length > 1 ? 'are' : 'is'} not finished; cancel or wait for ${users.length > 1 ? 'them' : 'it'} first`);
    }
    await this.#db.deleteFrom('artifacts').where('id', '=', id).execute();
    await this.#blobs.delete(id);
    this.#logger.info({ artifact: id }, 'artifact deleted');
    return artifact;
  }

  open(id: string, range?: ByteRange): Promise<Readable | undefined> {
    return this.#blobs.open(id, range);
  }

  /**
   * A URL only `deviceId` may download `artifactId` with, until `ttlSec` from now. With a
   * `baseUrl` it is absolute; without, it is the path and query (`/dl/…?device=&exp=&sig=`),
   * which the agent resolves against the manager URL it already uses (docs/artifacts.md).
   */
  async downloadUrlFor(artifactId: string, deviceId: string, ttlSec: number, baseUrl?: string): Promise<DownloadUrl> {
    await this.get(artifactId);
    const exp = Math.floor(this.#now() / 1000) + ttlSec;
    const path = this.#devicePath(artifactId, deviceId, exp);
    return { url: baseUrl ? `${baseUrl.replace(/\/+$/, '')}${path}` : path, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /** `/dl/<id>?device=&exp=&sig=`: the path of a device download URL, signed until `exp` (unix seconds). */
  #devicePath(artifactId: string, deviceId: string, exp: number): string {
    const query = new URLSearchParams({ device: deviceId, exp: String(exp), sig: this.#urls.sign(artifactId, deviceId, exp) });
    return `/dl/${encodeURIComponent(artifactId)}?${query.toString()}`;
  }

  /**
   * The download URL a task hands its agent: signed for the task's device, and only for an
   * artifact the task's operation names (so a URL cannot be minted through a task for
   * something else). Relative: the agent joins it to its manager URL.
   */
  async downloadUrlForTask(taskId: string, artifactId: string, ttlSec: number): Promise<DownloadUrl> {
    const task = await this.#db.selectFrom('tasks').select(['device_id', 'operation']).where('id', '=', taskId).executeTakeFirst();
    if (!task) throw notFound('task', taskId);
    if (!task.operation.includes(`"${artifactId}"`)) throw new AppError('conflict', `task ${taskId} does not use artifact ${artifactId}`);
    return this.downloadUrlFor(artifactId, task.device_id, ttlSec);
  }

  /**
   * The grants of many tasks at once, for the task outbox: one query for every artifact the
   * tasks name, then a download URL signed for each task's device, valid `ttlSec`. A task whose
   * artifact no longer exists gets no grant for it (the agent fails it, naming the id).
   */
  async grantsFor(tasks: ReadonlyArray<{ taskId: string; deviceId: string; artifactIds: readonly string[] }>, ttlSec: number): Promise<Map<string, ArtifactGrant[]>> {
    const ids = [...new Set(tasks.flatMap((t) => t.artifactIds))];
    const grants = new Map<string, ArtifactGrant[]>();
    if (ids.length === 0) return grants;
    const rows = new Map<string, ArtifactsTable>();
    for (let i = 0; i < ids.length; i += 500) {
      for (const r of await this.#db.selectFrom('artifacts').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute()) rows.set(r.id, r);
    }
    const exp = Math.floor(this.#now() / 1000) + ttlSec;
    const expiresAt = new Date(exp * 1000).toISOString();
    for (const t of tasks) {
      const list: ArtifactGrant[] = [];
      for (const id of t.artifactIds) {
        const row = rows.get(id);
        if (!row) continue;
        list.push({ manifest: manifestOf(toArtifact(row)), signature: row.signature, keyId: row.key_id, url: this.#devicePath(id, t.deviceId, exp), expiresAt });
      }
      grants.set(t.taskId, list);
    }
    return grants;
  }

  /** The kinds of the artifacts that exist among `ids` (one query per 500 ids). */
  async kindsOf(ids: readonly string[]): Promise<Map<string, ArtifactKind>> {
    const kinds = new Map<string, ArtifactKind>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 500) {
      const rows = await this.#db.selectFrom('artifacts').select(['id', 'kind']).where('id', 'in', unique.slice(i, i + 500)).execute();
      for (const r of rows) kinds.set(r.id, r.kind as ArtifactKind);
    }
    return kinds;
  }

  /** Checks a device download URL; throws a 403 that says what is wrong. */
  checkDeviceUrl(artifactId: string, q: { device?: string | undefined; exp?: string | undefined; sig?: string | undefined }): void {
    const refusal = this.#urls.check(artifactId, q.device, q.exp, q.sig, Math.floor(this.#now() / 1000));
    if (refusal === 'malformed') throw new AppError('forbidden', 'download URL is incomplete: it needs device, exp and sig; ask the manager for a new one');
    if (refusal === 'bad_signature') throw new AppError('forbidden', 'download URL signature does not match this artifact and device');
    if (refusal === 'expired') throw new AppError('forbidden', `download URL expired at ${new Date(Number(q.exp) * 1000).toISOString()}; ask the manager for a new one`);
  }
}
