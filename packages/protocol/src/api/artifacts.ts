import Type, { type Static } from 'typebox';
import { ARTIFACT_KINDS, NAME_LIMITS } from '../constants.js';
import { Page, Paging, Timestamp } from './common.js';

/** What an artifact is for: a VM image, a patch bundle for the device, or a new agent version. */
export const ArtifactKind = Type.Union([Type.Literal('ova'), Type.Literal('patch'), Type.Literal('agent')]);
export type ArtifactKind = Static<typeof ArtifactKind>;
// The plain list (constants.ts) and the schema name the same kinds.
ARTIFACT_KINDS satisfies readonly ArtifactKind[];

/** Names and versions end up in file names on devices and in logs: printable, no path separators. */
const Label = Type.String({ minLength: 1, maxLength: NAME_LIMITS.artifact, pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]*$' });

/**
 * The part of an artifact the manager signs (see docs/artifacts.md). The agent checks the
 * signature with the key it pinned at enrollment, then never accepts more than `size` bytes
 * and uses the file only if its SHA-256 is `sha256`.
 */
export const ArtifactManifest = Type.Object(
  {
    id: Type.String(),
    kind: ArtifactKind,
    name: Type.String(),
    version: Type.String(),
    size: Type.Integer({ minimum: 0 }),
    /** Lower-case hex. */
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  },
  { additionalProperties: false },
);
export type ArtifactManifest = Static<typeof ArtifactManifest>;

export const Artifact = Type.Object({
  id: Type.String(),
  kind: ArtifactKind,
  name: Type.String(),
  version: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  createdAt: Timestamp,
  createdBy: Type.String(),
});
export type Artifact = Static<typeof Artifact>;
export const ArtifactPage = Page(Artifact);

/** `GET /artifacts/{id}`: the artifact, its manifest and the manager's Ed25519 signature over it. */
export const SignedArtifact = Type.Intersect([
  Artifact,
  Type.Object({
    manifest: ArtifactManifest,
    /** base64 Ed25519 signature over the canonical JSON of `manifest` (keys sorted, no spaces). */
    signature: Type.String(),
    /** Which key signed it: the `keyId` of `GET /signing-key`. */
    keyId: Type.String(),
  }),
]);
export type SignedArtifact = Static<typeof SignedArtifact>;

export const UploadArtifactQuery = Type.Object(
  { kind: ArtifactKind, name: Label, version: Label },
  { additionalProperties: false },
);
export type UploadArtifactQuery = Static<typeof UploadArtifactQuery>;

export const ArtifactQuery = Type.Object(
  {
    kind: Type.Optional(ArtifactKind),
    name: Type.Optional(Type.String({ maxLength: 128 })),
    ...Paging,
  },
  { additionalProperties: false },
);
export type ArtifactQuery = Static<typeof ArtifactQuery>;

/** The manager's manifest signing key; agents pin it at enrollment. */
export const SigningKey = Type.Object(
  {
    algorithm: Type.Literal('ed25519'),
    /** SHA-256 of the raw public key, hex, first 16 characters. */
    keyId: Type.String(),
    /** SubjectPublicKeyInfo, PEM. */
    publicKeyPem: Type.String(),
  },
  { additionalProperties: false },
);
export type SigningKey = Static<typeof SigningKey>;

/** A download URL signed for one device and one artifact, valid until `expiresAt`. */
export const DownloadUrl = Type.Object({
  url: Type.String(),
  expiresAt: Timestamp,
});
export type DownloadUrl = Static<typeof DownloadUrl>;

export const CreateDownloadUrl = Type.Object(
  {
    deviceId: Type.String({ minLength: 1, maxLength: 128 }),
    /** Seconds it stays valid; default the manager's downloadUrlTtlSec. */
    ttlSec: Type.Optional(Type.Integer({ minimum: 1, maximum: 2592000 })),
  },
  { additionalProperties: false },
);
export type CreateDownloadUrl = Static<typeof CreateDownloadUrl>;
