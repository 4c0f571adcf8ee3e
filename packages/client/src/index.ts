/**
 * `@pallas/client`: the typed REST and live-event client of a Pallas manager (docs/client.md).
 * Runs in Node.js 20+ and in browsers; `@pallas/client/node` adds file uploads and downloads.
 */
export { PallasClient, type CallArgs, type CallInput, type LiveMessage, type LiveStream, type PallasClientOptions, type SendOptions } from './client.js';
export { PallasApiError, PallasNetworkError, isTransient } from './errors.js';
export { RECONNECTED_WITHOUT_ID, followEventStream, type Connect, type FollowOptions, type FollowedStream, type SseMessage, type StreamState } from './event-stream.js';
export type { Download, DownloadOptions, Progress, UploadOptions } from './transfer.js';
export { isFinal, type WaitOptions } from './wait.js';
export { ROUTES, ROUTE_NAMES, type RouteName } from '@pallas/protocol/routes';
