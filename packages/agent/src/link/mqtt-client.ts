import { createRequire } from 'node:module';
import { connect as netConnect, isIP } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
import * as clientModule from 'mqtt/lib/client';

/**
 * mqtt.js's client class. Node hands a CommonJS module's `exports` object to `import`, a
 * bundler (the agent bundle) its `exports.default`: either way, the class.
 */
const MqttClientClass = ((clientModule as unknown as { default: { default?: unknown } }).default.default ?? clientModule.default) as unknown as new (
  streamBuilder: (client: MqttClient) => NodeJS.ReadWriteStream,
  options: IClientOptions,
) => MqttClient;

/**
 * An mqtt.js client (`MqttClient`, mqtt.js's own protocol and session code) on a socket made
 * here, for `mqtt://` and `mqtts://` URLs: what `mqtt.connect` does for them, without loading
 * the rest of mqtt.js (its WebSocket, SOCKS and browser transports, which the agent never
 * uses, are most of what the package adds to an idle agent: docs/benchmarks.md, "Agent
 * footprint"). `null` for any other URL: the caller uses `mqtt.connect`.
 */
export function connectMqtt(url: string, options: IClientOptions): MqttClient | null {
  const parsed = new URL(url);
  const secure = parsed.protocol === 'mqtts:';
  if (!secure && parsed.protocol !== 'mqtt:') return null;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = parsed.port ? Number(parsed.port) : secure ? 8883 : 1883;
  const opts: IClientOptions = { ...options, protocol: secure ? 'mqtts' : 'mqtt', host, hostname: host, port };
  if (parsed.username && opts.username === undefined) opts.username = decodeURIComponent(parsed.username);
  if (parsed.password && opts.password === undefined) opts.password = decodeURIComponent(parsed.password);
  const build = secure ? tlsStream : tcpStream;
  const client = new MqttClientClass((c) => build(c, opts), opts);
  // As mqtt.connect does: an error nobody listens to must not throw (the caller listens too).
  client.on('error', () => {});
  return client;
}

function tcpStream(_client: MqttClient, opts: IClientOptions): NodeJS.ReadWriteStream {
  return netConnect({ host: opts.host!, port: opts.port! });
}

/** As mqtt.js's `tls` transport: SNI for a host name, the check of the server's certificate unless told not to. */
function tlsStream(client: MqttClient, opts: IClientOptions): NodeJS.ReadWriteStream {
  // Loaded when a link uses TLS (some 4 MiB): an agent on plain MQTT has no use for it.
  const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  const rejectUnauthorized = opts.rejectUnauthorized !== false;
  const connection = tls.connect({
    host: opts.host!, port: opts.port!, rejectUnauthorized,
    ...(isIP(opts.host!) === 0 ? { servername: opts.servername ?? opts.host! } : {}),
    ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
    ...(opts.key !== undefined ? { key: opts.key } : {}),
  });
  const onError = (err: Error): void => {
    if (rejectUnauthorized) client.emit('error', err);
    connection.end();
  };
  connection.on('secureConnect', () => {
    if (rejectUnauthorized && !connection.authorized) connection.emit('error', new Error('TLS not authorized'));
    else connection.removeListener('error', onError);
  });
  connection.on('error', onError);
  return connection;
}
