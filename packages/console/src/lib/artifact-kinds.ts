import type { ArtifactKind } from '@pallas/protocol';

/**
 * The artifact kinds, repeated from the protocol (the console imports only its types, so none
 * of its runtime code is bundled); a unit test checks they are the same.
 */
export const ARTIFACT_KINDS: readonly ArtifactKind[] = ['ova', 'patch', 'agent'];

export const ARTIFACT_KIND_TEXT: Record<ArtifactKind, string> = {
  ova: 'VM image (OVA)',
  patch: 'device patch',
  agent: 'agent version',
};
