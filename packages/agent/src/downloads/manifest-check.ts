import { createPublicKey, verify } from 'node:crypto';
import type { ArtifactGrant, SigningKey } from '@pallas/protocol';
import { canonicalJson } from '@pallas/protocol/canonical-json';
import { ArtifactError } from './artifact-error.js';

/** Artifact ids become file names on the device: only what the manager makes is accepted. */
const SAFE_ID = /^art_[0-9A-Za-z_-]{1,60}$/;

/**
 * Checks a grant before a byte is downloaded: the key it was signed with is the one pinned at
 * enrollment, and the Ed25519 signature verifies over the canonical JSON of the manifest (the
 * same `canonicalJson` the manager signs with). Throws an `ArtifactError` saying what is wrong.
 */
export function checkGrant(grant: ArtifactGrant, pinned: SigningKey | undefined): void {
  const { manifest } = grant;
  if (!SAFE_ID.test(manifest.id)) throw new ArtifactError('artifact_invalid', `artifact id ${JSON.stringify(manifest.id).slice(0, 80)} is not one the manager makes; refused`);
  if (!pinned) {
    throw new ArtifactError('artifact_untrusted', `cannot check artifact ${manifest.id}: this agent enrolled before the manager signed artifacts and has no pinned signing key; re-enroll it (pallas-agent --re-enroll --token <token>)`);
  }
  if (grant.keyId !== pinned.keyId) {
    throw new ArtifactError('artifact_invalid', `artifact ${manifest.id} is signed with key ${grant.keyId}, but this agent pinned key ${pinned.keyId} at enrollment; refused (if the manager's signing key was replaced, re-enroll the device)`);
  }
  let ok = false;
  try {
    ok = verify(null, Buffer.from(canonicalJson(manifest)), createPublicKey(pinned.publicKeyPem), Buffer.from(grant.signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw new ArtifactError('artifact_invalid', `the manifest signature of artifact ${manifest.id} does not verify with the pinned key ${pinned.keyId}; refused`);
}
