import type { ArtifactKind } from '@pallas/protocol';

/** What each artifact kind is, in the console's words. */
export const ARTIFACT_KIND_TEXT: Record<ArtifactKind, string> = {
  ova: 'VM image (OVA)',
  patch: 'device patch',
  agent: 'agent version',
};
