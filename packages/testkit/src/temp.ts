import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory in `parent` (the system's temp dir by default); `cleanup()` removes it. */
export function tempDir(prefix = 'pallas-test-', parent = tmpdir()): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(parent, prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
