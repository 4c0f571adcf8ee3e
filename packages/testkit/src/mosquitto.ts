import { spawn, type ChildProcess } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';
import { MissingRequirementError } from './requirements.js';
import { tempDir } from './temp.js';
import { issueTestServerCertificate, makeTestCa, OPENSSL_BIN, type TestServerCertificate } from './tls.js';

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';
export const DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';
/** The username every manager uses on the broker (deploy/mosquitto/pallas.acl's `user` section). */
export const MANAGER_BROKER_USER = 'pallas-manager';

/** Why Mosquitto tests cannot run here, or undefined. */
export function mosquittoMissingReason(): string | undefined {
  if (!existsSync(MOSQUITTO_BIN)) return `${MOSQUITTO_BIN} is missing: apt-get install -y mosquitto mosquitto-clients`;
  if (!existsSync(DYNSEC_PLUGIN)) return `${DYNSEC_PLUGIN} is missing: apt-get install -y mosquitto`;
  return undefined;
}

export interface RunningMosquitto {
  /** `mqtt://127.0.0.1:<port>`, no credentials: what devices are told. */
  url: string;
  port: number;
  /** The managers' URL, with the `pallas-manager` credentials. */
  managerUrl: string;
  managerPassword: string;
  /** With `tls`: `mqtts://127.0.0.1:<port>`, the same with the managers' credentials, and the CA's PEM file. */
  tls?: { url: string; managerUrl: string; port: number; caFile: string };
  /** The dynamic-security admin (for tests that inspect the plugin like an operator would). */
  admin: { username: string; password: string };
  dataDir: string;
  pid(): number;
  output(): string;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same config and dynamic-security file. */
  restart(): Promise<void>;
  /** Stops it and removes its files. */
  cleanup(): Promise<void>;
}

/**
 * Starts Debian's Mosquitto 2 on a free loopback port (never the system's 1883), configured
 * as deploy/mosquitto/ configures it for operators: the dynamic-security plugin with every
 * default access denied, pallas.acl, no retained messages. The dynamic-security file is
 * written here directly (what setup.sh and mosquitto_ctrl produce): the admin, and the
 * managers' client with the role that lets it drive the plugin.
 */
export interface StartMosquittoOptions {
  /** Device clients written into the dynamic-security file before the start (measurements at fleet size). */
  devices?: Array<{ username: string; clientId: string; password: string }>;
  /** Also a TLS listener, with a certificate for 127.0.0.1 from a CA made for this broker. Default: off. */
  tls?: boolean;
}

export async function startMosquitto(options: StartMosquittoOptions = {}): Promise<RunningMosquitto> {
  const missing = mosquittoMissingReason();
  if (missing) throw new MissingRequirementError(missing);
  if (options.tls && !existsSync(OPENSSL_BIN)) throw new MissingRequirementError('/usr/bin/openssl is missing (makes the test broker\'s certificate): apt-get install -y openssl');
  const dir = tempDir('pallas-mosquitto-');
  // Mosquitto started as root drops to the user `mosquitto`, which must be able to rewrite
  // the dynamic-security file; the folder is the test's own, so it is opened up.
  chmodSync(dir.path, 0o777);
  const managerPassword = randomBytes(12).toString('hex');
  const admin = { username: 'admin', password: randomBytes(12).toString('hex') };
  const dynsecFile = join(dir.path, 'dynamic-security.json');
  const config = dynsecConfig(admin, managerPassword);
  for (const d of options.devices ?? []) config.clients.push({ ...dynsecClient(d.username, d.password, []), clientid: d.clientId });
  writeFileSync(dynsecFile, JSON.stringify(config, null, 1));
  chmodSync(dynsecFile, 0o666);
  const aclFile = join(dir.path, 'pallas.acl');
  writeFileSync(aclFile, readFileSync(join(REPO_ROOT, 'deploy/mosquitto/pallas.acl')));
  chmodSync(aclFile, 0o644);
  const port = await freePort();
  const tls = options.tls ? { port: await freePort(), ...makeCertificates(dir.path) } : undefined;
  const confFile = join(dir.path, 'mosquitto.conf');
  writeFileSync(confFile, testConfig({ port, dynsecFile, aclFile, tls }));

  let child: ChildProcess | undefined;
  let out = '';
  let exited: Promise<void> = Promise.resolve();
  const launch = async () => {
    const proc = spawn(MOSQUITTO_BIN, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const keep = (b: Buffer) => {
      out += b.toString();
      if (out.length > 1_000_000) out = out.slice(-500_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitListening(port, proc, () => out);
    if (tls) await waitListening(tls.port, proc, () => out);
  };
  const signal = async (sig: NodeJS.Signals) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(sig);
    await exited;
  };
  await launch();
  const url = `mqtt://127.0.0.1:${port}`;
  return {
    url,
    port,
    managerUrl: `mqtt://${MANAGER_BROKER_USER}:${managerPassword}@127.0.0.1:${port}`,
    managerPassword,
    ...(tls ? {
      tls: {
        url: `mqtts://127.0.0.1:${tls.port}`, port: tls.port, caFile: tls.caFile,
        managerUrl: `mqtts://${MANAGER_BROKER_USER}:${managerPassword}@127.0.0.1:${tls.port}`,
      },
    } : {}),
    admin,
    dataDir: dir.path,
    pid: () => child?.pid ?? -1,
    output: () => out,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGTERM');
      await launch();
    },
    cleanup: async () => {
      await signal('SIGTERM');
      dir.cleanup();
    },
  };
}

/**
 * Settings Mosquitto 2 takes per listener: they belong to the `listener` line above them, and
 * one given before any `listener` line opens a default listener on 1883 instead. The test
 * broker repeats the production listener's in each of its own listeners.
 */
const LISTENER_SETTINGS = new Set(['max_qos', 'max_connections', 'max_topic_alias', 'mount_point', 'protocol', 'use_username_as_clientid']);

/** deploy/mosquitto/mosquitto.conf without its production listener and paths, plus the test's own. */
function testConfig(p: { port: number; dynsecFile: string; aclFile: string; tls: { port: number; certFile: string; keyFile: string } | undefined }): string {
  const replaced = new Set(['listener', 'certfile', 'keyfile', 'cafile', 'plugin_opt_config_file', 'acl_file', 'persistence', 'persistence_location', 'pid_file', 'log_dest']);
  const key = (line: string) => line.trim().split(/\s+/)[0] ?? '';
  const lines = readFileSync(join(REPO_ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8').split('\n');
  const perListener = lines.filter((line) => LISTENER_SETTINGS.has(key(line)));
  const shared = lines.filter((line) => !replaced.has(key(line)) && !LISTENER_SETTINGS.has(key(line)));
  return [
    ...shared,
    '# The test broker:',
    `listener ${p.port} 127.0.0.1`,
    ...perListener,
    ...(p.tls ? [`listener ${p.tls.port} 127.0.0.1`, ...perListener, `certfile ${p.tls.certFile}`, `keyfile ${p.tls.keyFile}`, 'tls_version tlsv1.2'] : []),
    `plugin_opt_config_file ${p.dynsecFile}`,
    `acl_file ${p.aclFile}`,
    // Nothing survives a restart but the dynamic-security file, as with a fresh broker.
    'persistence false',
    'log_dest stdout',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    '',
  ].join('\n');
}

/** A dynamic-security client entry, hashed as the plugin hashes (PBKDF2-SHA512, 101 iterations). */
function dynsecClient(username: string, password: string, roles: string[]): { username: string; password: string; salt: string; iterations: number; roles: Array<{ rolename: string }>; clientid?: string } {
  const salt = randomBytes(12);
  const iterations = 101;
  return {
    username,
    password: pbkdf2Sync(password, salt, iterations, 64, 'sha512').toString('base64'),
    salt: salt.toString('base64'),
    iterations,
    roles: roles.map((rolename) => ({ rolename })),
  };
}

function dynsecConfig(admin: { username: string; password: string }, managerPassword: string) {
  const control = '$CONTROL/dynamic-security/#';
  const controlAcls = [
    { acltype: 'publishClientSend', topic: control, allow: true },
    { acltype: 'publishClientReceive', topic: control, allow: true },
    { acltype: 'subscribePattern', topic: control, allow: true },
    { acltype: 'unsubscribePattern', topic: control, allow: true },
  ];
  return {
    clients: [dynsecClient(admin.username, admin.password, ['admin']), dynsecClient(MANAGER_BROKER_USER, managerPassword, ['pallas-manager'])],
    roles: [
      { rolename: 'admin', acls: controlAcls },
      { rolename: 'pallas-manager', acls: controlAcls },
    ],
    groups: [],
    // Deny everywhere: the plugin then defers to pallas.acl (see deploy/mosquitto/mosquitto.conf).
    defaultACLAccess: { publishClientSend: false, publishClientReceive: false, subscribe: false, unsubscribe: true },
  };
}

/** A CA and a server certificate for 127.0.0.1 it signed, made with Debian's openssl. */
function makeCertificates(dir: string): TestServerCertificate {
  return issueTestServerCertificate(dir, 'broker', makeTestCa(dir, 'broker'));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitListening(port: number, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`mosquitto exited at start:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto did not listen on ${port} within 10 s:\n${output()}`);
}
