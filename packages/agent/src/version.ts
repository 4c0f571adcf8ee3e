// The constants subpath, not the package's index: the supervisor reports this version and must
// not load the protocol's schemas for it.
import { PALLAS_VERSION } from '@pallas/protocol/constants';

/**
 * Set by `scripts/bundle.mjs` (esbuild `define`) when the agent is bundled into one file for
 * an `agent` artifact; undefined when the agent runs from `dist/` as installed.
 */
declare const __PALLAS_AGENT_VERSION__: string | undefined;

/**
 * The version this agent reports everywhere (presence, host facts, status, `--version`) and
 * that self-update compares. The one place it comes from, so a bundle built with
 * `PALLAS_AGENT_VERSION=0.1.1-test` says `0.1.1-test` on every channel.
 */
export const AGENT_VERSION: string = typeof __PALLAS_AGENT_VERSION__ === 'string' ? __PALLAS_AGENT_VERSION__ : PALLAS_VERSION;
