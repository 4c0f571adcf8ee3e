import type { ArtifactKind, SignedArtifact } from '@pallas/protocol';
import { API_BASE, ApiError, queryString } from '../api/client.js';
import { authHeaders } from '../auth/session.js';
import { uploadErrorText } from './upload-error.js';

export interface UploadProgress {
  sent: number;
  total: number;
  /** Bytes a second over the last few seconds (0 until there is a measurement). */
  rate: number;
}

export interface Upload {
  done: Promise<SignedArtifact>;
  abort(): void;
}

/** How far back the rate looks: long enough to be steady, short enough to follow changes. */
const RATE_WINDOW_MS = 3000;

/**
 * Uploads a file as an artifact with XMLHttpRequest, which (unlike fetch) reports upload
 * progress. The `File` is handed to `send` as it is: the browser streams it from disk, so a
 * multi-GB OVA is never read into the page's memory.
 */
export function uploadArtifact(
  file: File,
  meta: { kind: ArtifactKind; name: string; version: string },
  onProgress: (p: UploadProgress) => void,
): Upload {
  const xhr = new XMLHttpRequest();
  const samples: Array<{ at: number; sent: number }> = [];
  const done = new Promise<SignedArtifact>((resolve, reject) => {
    xhr.open('POST', `${API_BASE}/artifacts${queryString(meta)}`);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => {
      const now = performance.now();
      samples.push({ at: now, sent: e.loaded });
      while (samples.length > 2 && now - samples[0]!.at > RATE_WINDOW_MS) samples.shift();
      const first = samples[0]!;
      const rate = now - first.at > 200 ? ((e.loaded - first.sent) * 1000) / (now - first.at) : 0;
      onProgress({ sent: e.loaded, total: e.lengthComputable ? e.total : file.size, rate });
    };
    xhr.onload = () => {
      if (xhr.status === 201) {
        try {
          resolve(JSON.parse(xhr.responseText) as SignedArtifact);
        } catch {
          reject(new ApiError(xhr.status, 'http_error', 'the manager accepted the upload but its answer was not readable; reload the list'));
        }
        return;
      }
      reject(uploadError(xhr.status, xhr.statusText, xhr.responseText));
    };
    // The manager closes the connection when it refuses an upload before reading it (too large,
    // a name already taken), and the browser may then see only a network error.
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload was cut off: the manager closed the connection or could not be reached. If the file is very large, it may be over the manager\'s size limit (maxArtifactBytes).'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'upload cancelled; nothing was kept'));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

function uploadError(status: number, statusText: string, body: string): ApiError {
  const { code, message } = uploadErrorText(status, statusText, body);
  return new ApiError(status, code, message);
}
