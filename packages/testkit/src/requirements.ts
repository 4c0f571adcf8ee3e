import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * The skip rule (docs/testing.md): a test whose tool or service is missing skips with a
 * one-line reason on a developer's partial run, and fails with that reason (which names the
 * install command) under CI or the README's test command, where everything must run.
 * `npm test` sets PALLAS_TEST_STRICT=1; CI sets CI.
 */
export function strictTests(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.CI) || env.PALLAS_TEST_STRICT === '1';
}

/** A program a test runs, and the Debian package that brings it. */
export interface Tool {
  bin: string;
  /** Arguments that make it print its version and exit 0. Default `--version`. */
  versionArgs?: string[];
  /** The Debian package to install (`apt-get install <package>`). */
  debian: string;
  /** Any exit status means it is there (`mosquitto_sub --help` exits 1). Default: only 0. */
  anyExit?: boolean;
}

export const TOOLS = {
  qemu: { bin: 'qemu-system-x86_64', debian: 'qemu-system-x86' },
  qemuImg: { bin: 'qemu-img', debian: 'qemu-utils' },
  tar: { bin: 'tar', debian: 'tar' },
  go: { bin: 'go', versionArgs: ['version'], debian: 'golang-go' },
  mosquittoSub: { bin: 'mosquitto_sub', versionArgs: ['--help'], debian: 'mosquitto-clients', anyExit: true },
  mosquittoPub: { bin: 'mosquitto_pub', versionArgs: ['--help'], debian: 'mosquitto-clients', anyExit: true },
  curl: { bin: 'curl', debian: 'curl' },
  wget: { bin: 'wget', debian: 'wget' },
  chromium: { bin: 'chromium', debian: 'chromium' },
} satisfies Record<string, Tool>;

/** Whether `bin` runs here (found on PATH and answers its version arguments). */
export function hasTool(tool: Tool, env: NodeJS.ProcessEnv = process.env): boolean {
  const res = spawnSync(tool.bin, tool.versionArgs ?? ['--version'], { env, stdio: 'ignore', timeout: 30_000 });
  return res.error === undefined && (res.status === 0 || tool.anyExit === true);
}

/** One line saying which tools are missing and how to install them, or undefined when all are here. */
export function missingToolsReason(tools: Tool[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const missing = tools.filter((t) => !hasTool(t, env));
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((t) => t.debian))];
  return `${missing.map((t) => t.bin).join(' and ')} not found (apt-get install ${packages.join(' ')}; npm test installs it)`;
}

/** Like `missingToolsReason` for a file or folder a Debian package installs. */
export function missingPathReason(path: string, debian: string): string | undefined {
  return existsSync(path) ? undefined : `${path} missing (apt-get install ${debian}; npm test installs it)`;
}

/** Thrown in strict mode instead of skipping: the test file fails with the reason. */
export class MissingRequirementError extends Error {
  override readonly name = 'MissingRequirementError';
}

/**
 * For node:test's `skip` option. `false` when nothing is missing; otherwise, on a partial run,
 * the reason (the test is skipped and the runner lists it); in strict mode it throws, so the
 * test file fails with the reason rather than passing without running.
 */
export function skipUnless(...reasons: Array<string | undefined>): false | string {
  const reason = reasons.filter((r): r is string => r !== undefined).join('; ');
  if (reason === '') return false;
  if (strictTests()) throw new MissingRequirementError(`${reason} — required under CI and npm test (see docs/testing.md)`);
  return reason;
}
