/**
 * What to tell the user about a refused upload: the manager's own message where there is one
 * (`{error: {code, message}}`), else a sentence for the usual refusals (a proxy in front of the
 * manager may answer 413 with its own page).
 */
export function uploadErrorText(status: number, statusText: string, body: string): { code: string; message: string } {
  let message: string | undefined;
  let code = 'http_error';
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    message = parsed.error?.message;
    code = parsed.error?.code ?? code;
  } catch {
    /* not the API's JSON */
  }
  const known: Record<number, string> = {
    409: 'An artifact with this kind, name and version already exists: delete it first or choose another version.',
    413: 'The file is larger than the manager accepts (its maxArtifactBytes setting).',
    415: 'The manager refused the file\'s content type.',
  };
  return { code, message: message ?? known[status] ?? `the manager answered ${status} ${statusText}`.trim() };
}
