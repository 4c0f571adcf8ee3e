/** loadConfig: defaults, flag > environment > file precedence, parsing and errors. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '@pallas/testkit';
import { ConfigError, databaseUrlOf, loadConfig } from '../src/config/config.js';

let dir: ReturnType<typeof tempDir>;
before(() => {
  dir = tempDir('pallas-config-');
});
after(() => dir.cleanup());

function configFile(name: string, content: unknown): string {
  const path = join(dir.path, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** Asserts loadConfig throws a ConfigError whose message matches every pattern. */
function refuses(argv: string[], env: NodeJS.ProcessEnv, ...patterns: RegExp[]): ConfigError {
  let caught: unknown;
  try {
    loadConfig(argv, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify({ argv, env })}, got ${String(caught)}`);
  assert.equal(caught.name, 'ConfigError');
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

describe('loadConfig', () => {
  it('has defaults for everything', () => {
    const c = loadConfig([], {});
    assert.equal(c.dataDir, resolve('./pallas-data'));
    assert.equal(c.httpPort, 8080);
    assert.equal(c.httpHost, undefined, 'HTTPS on all interfaces, plain HTTP on loopback');
    assert.equal(c.mqttPort, 1883);
    assert.equal(c.mqttHost, undefined, 'MQTTS on all interfaces, plain MQTT on loopback');
    assert.equal(c.keepaliveSec, 30);
    assert.equal(c.statusIntervalSec, 60);
    assert.equal(c.sessionTtlSec, 43200);
    assert.equal(c.maxMessageBytes, 256 * 1024);
    assert.equal(c.maxBodyBytes, 1024 * 1024);
    assert.equal(c.statusFlushMs, 250);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.demoDevices, 0);
    for (const k of ['config', 'mqttPublicUrl', 'databaseUrl', 'databaseReadUrl', 'adminPassword'] as const) {
      assert.equal(c[k], undefined, `${k} has no default`);
    }
    assert.equal(databaseUrlOf(c), `sqlite:${resolve('./pallas-data/pallas.db')}`);
  });

  it('turns plain HTTP and MQTT off in production mode unless a port is given', () => {
    const dev = loadConfig([], {});
    assert.equal(dev.production, false);
    assert.equal(dev.httpsPort, 8443);
    assert.equal(dev.mqttsPort, 8883);
    const prod = loadConfig(['--production'], {});
    assert.equal(prod.httpPort, undefined);
    assert.equal(prod.mqttPort, undefined);
    assert.equal(prod.httpsPort, 8443);
    const env = loadConfig([], { PALLAS_PRODUCTION: 'true', PALLAS_MQTT_PORT: '1884' });
    assert.equal(env.production, true);
    assert.equal(env.httpPort, undefined);
    assert.equal(env.mqttPort, 1884);
    assert.equal(loadConfig(['--require-approval'], {}).requireApproval, true);
    assert.throws(() => loadConfig(['--tls-cert', 'x.pem'], {}), /tls-cert and tls-key go together/);
  });

  it('ignores unrelated and empty environment variables', () => {
    const c = loadConfig([], { PATH: '/bin', HTTP_PORT: '1', PALLAS_HTTP_PORT: '', PALLAS_SERVER: 'http://x' });
    assert.equal(c.httpPort, 8080);
  });

  it('takes a flag over the environment over the config file over the default', () => {
    const file = configFile('precedence.json', {
      httpPort: 1001, mqttPort: 1002, keepaliveSec: 5, logLevel: 'debug', httpHost: '10.0.0.1', dataDir: '/srv/from-file',
    });
    const env = { PALLAS_CONFIG: file, PALLAS_HTTP_PORT: '2001', PALLAS_MQTT_PORT: '2002', PALLAS_LOG_LEVEL: 'warn' };
    const c = loadConfig(['--http-port', '3001', '--log-level', 'error'], env);
    assert.equal(c.httpPort, 3001, 'flag beats env and file');
    assert.equal(c.logLevel, 'error', 'flag beats env and file');
    assert.equal(c.mqttPort, 2002, 'env beats file');
    assert.equal(c.keepaliveSec, 5, 'file beats default');
    assert.equal(c.httpHost, '10.0.0.1', 'file beats default');
    assert.equal(c.dataDir, '/srv/from-file');
    assert.equal(c.statusFlushMs, 250, 'default when nobody sets it');
    assert.equal(c.config, file);

    // Without the flag and the environment the file's values show through.
    const fromFile = loadConfig(['--config', file], {});
    assert.equal(fromFile.httpPort, 1001);
    assert.equal(fromFile.mqttPort, 1002);
    assert.equal(fromFile.logLevel, 'debug');
  });

  it('reads the config file named by the flag rather than the one in the environment', () => {
    const byFlag = configFile('by-flag.json', { httpPort: 4001 });
    const byEnv = configFile('by-env.json', { httpPort: 4002, mqttPort: 4003 });
    const c = loadConfig(['--config', byFlag], { PALLAS_CONFIG: byEnv });
    assert.equal(c.httpPort, 4001);
    assert.equal(c.mqttPort, 1883, 'nothing from the other file');
  });

  it('maps every option to --kebab-case and PALLAS_SNAKE_CASE', () => {
    const c = loadConfig(
      ['--data-dir', 'rel/dir', '--mqtt-public-url', 'mqtts://edge.example.com:8883', '--status-flush-ms', '100'],
      { PALLAS_DATABASE_URL: 'postgres://db/pallas', PALLAS_ADMIN_PASSWORD: 'long-enough-password', PALLAS_MAX_MESSAGE_BYTES: '4096', PALLAS_DEMO_DEVICES: '3' },
    );
    assert.equal(c.dataDir, resolve('rel/dir'), 'data dir is made absolute');
    assert.equal(c.mqttPublicUrl, 'mqtts://edge.example.com:8883');
    assert.equal(c.statusFlushMs, 100);
    assert.equal(c.databaseUrl, 'postgres://db/pallas');
    assert.equal(databaseUrlOf(c), 'postgres://db/pallas');
    assert.equal(c.adminPassword, 'long-enough-password');
    assert.equal(c.maxMessageBytes, 4096);
    assert.equal(c.demoDevices, 3);
    assert.equal(loadConfig(['--data-dir=/abs/dir'], {}).dataDir, '/abs/dir', '--flag=value works too');
  });

  it('parses numbers from flags and environment, and takes them as numbers from the file', () => {
    const c = loadConfig(['--http-port', '0', '--mqtt-port', ' 1884 '], { PALLAS_KEEPALIVE_SEC: '45' });
    assert.equal(c.httpPort, 0);
    assert.equal(c.mqttPort, 1884);
    assert.equal(c.keepaliveSec, 45);
    for (const k of ['httpPort', 'mqttPort', 'keepaliveSec'] as const) assert.equal(typeof c[k], 'number');
    const file = configFile('numbers.json', { sessionTtlSec: 600, statusIntervalSec: '120' });
    const f = loadConfig(['--config', file], {});
    assert.equal(f.sessionTtlSec, 600);
    assert.equal(f.statusIntervalSec, 120, 'a numeric string in the file is read as a number');
  });

  it('names the option when a value is invalid', () => {
    refuses(['--http-port', 'abc'], {}, /http-port/, /integer/);
    refuses(['--http-port', '80.5'], {}, /http-port/);
    refuses(['--http-port', '70000'], {}, /http-port/);
    refuses(['--http-port', '-1'], {}, /http-port/);
    refuses(['--http-port', ''], {}, /http-port/);
    refuses([], { PALLAS_MQTT_PORT: 'nope' }, /mqtt-port/);
    refuses([], { PALLAS_KEEPALIVE_SEC: '0' }, /keepalive-sec/);
    refuses(['--status-flush-ms', '5'], {}, /status-flush-ms/);
    refuses(['--config', configFile('bad-value.json', { maxBodyBytes: 'lots' })], {}, /max-body-bytes/);
    refuses(['--config', configFile('bad-type.json', { httpHost: 8 })], {}, /http-host/);
    // A bad password is named, never echoed.
    const err = refuses(['--admin-password', 'hunter2'], {}, /admin-password/);
    assert.doesNotMatch(err.message, /hunter2/);
  });

  it('takes an external broker from --broker-url / PALLAS_BROKER_URL, with a share group of pallas by default', () => {
    assert.equal(loadConfig([], {}).brokerUrl, undefined);
    assert.equal(loadConfig([], {}).brokerShareGroup, 'pallas');
    const c = loadConfig(['--broker-url', 'mqtts://pallas-manager:secret@broker:8883', '--broker-ca', '/etc/ca.pem'], { PALLAS_BROKER_SHARE_GROUP: 'blue' });
    assert.equal(c.brokerUrl, 'mqtts://pallas-manager:secret@broker:8883');
    assert.equal(c.brokerCa, '/etc/ca.pem');
    assert.equal(c.brokerShareGroup, 'blue');
    assert.equal(loadConfig([], { PALLAS_BROKER_URL: 'mqtt://broker:1883' }).brokerUrl, 'mqtt://broker:1883');
    refuses(['--broker-url', 'http://broker:1883'], {}, /broker-url/, /mqtt/);
    refuses(['--broker-share-group', 'a/b'], {}, /broker-share-group/);
  });

  it('refuses unknown flags, positional arguments and flags without a value', () => {
    refuses(['--http-prot', '8080'], {}, /http-prot/);
    refuses(['--verbose'], {}, /verbose/);
    refuses(['serve'], {}, /serve/);
    refuses(['--http-port'], {}, /http-port/);
  });

  it('refuses a config file it cannot read or parse', () => {
    refuses(['--config', join(dir.path, 'missing.json')], {}, /config file/, /missing\.json/);
    refuses([], { PALLAS_CONFIG: configFile('broken.json', '{"httpPort": 80,') }, /config file/, /broken\.json/);
  });
});
