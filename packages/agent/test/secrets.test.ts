import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfig, resolveEsxi } from '../src/config/config.js';
import { isAgentError } from '../src/errors.js';
import { runEncryptSecret } from '../src/secrets/encrypt-secret-command.js';
import { SecretError, decryptSecret, encryptSecret, readKey, readOrCreateKey } from '../src/secrets/index.js';

const dir = await mkdtemp(join(tmpdir(), 'pallas-secrets-'));
after(() => rm(dir, { recursive: true, force: true }));

const PASSWORD = 'Vm-Secr3t!pässwörd';

function flip(value: string, field: 2 | 3 | 4): string {
  const parts = value.split(':');
  const buf = Buffer.from(parts[field]!, 'base64url');
  buf[0] = buf[0]! ^ 1;
  parts[field] = buf.toString('base64url');
  return parts.join(':');
}

describe('secret cipher (AES-256-GCM, enc:v1)', () => {
  const key = randomBytes(32);

  it('round-trips any string, with a fresh IV each time', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => decryptSecret(encryptSecret(s, key), key) === s));
    const a = encryptSecret(PASSWORD, key);
    const b = encryptSecret(PASSWORD, key);
    assert.notEqual(a, b);
    assert.match(a, /^enc:v1:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]+$/);
    assert.ok(!a.includes(PASSWORD));
  });

  it('refuses a wrong key', () => {
    const value = encryptSecret(PASSWORD, key);
    assert.throws(() => decryptSecret(value, randomBytes(32)), (e: unknown) => e instanceof SecretError && /wrong key, or the value was modified/.test(e.message));
  });

  it('refuses a tampered IV, tag or ciphertext', () => {
    const value = encryptSecret(PASSWORD, key);
    for (const field of [2, 3, 4] as const) {
      assert.throws(() => decryptSecret(flip(value, field), key), SecretError, `field ${field}`);
    }
    // Shortened ciphertext.
    assert.throws(() => decryptSecret(value.slice(0, -2), key), SecretError);
  });

  it('refuses bad formats with a message that says what is wrong', () => {
    const value = encryptSecret(PASSWORD, key);
    const cases: Array<[string, RegExp]> = [
      ['plain', /must start with "enc:v1:"/],
      [value.replace('enc:v1:', 'enc:v9:'), /unknown version "v9"/],
      ['enc:v1:abc', /enc:v1:<iv>:<tag>:<ciphertext>/],
      [`${value}:extra`, /enc:v1:<iv>:<tag>:<ciphertext>/],
      [value.replace(/^enc:v1:[^:]+/, 'enc:v1:AAAA'), /iv must be 12 bytes/],
      [value.replace(/^(enc:v1:[^:]+:)[^:]+/, '$1AAAA'), /tag must be 16 bytes/],
      [value.replace(/^(enc:v1:[^:]+:[^:]+:)/, '$1***'), /ciphertext is not base64url/],
    ];
    for (const [bad, re] of cases) assert.throws(() => decryptSecret(bad, key), (e: unknown) => e instanceof SecretError && re.test(e.message), bad);
    assert.throws(() => encryptSecret('x', randomBytes(16)), /32 bytes/);
  });
});

describe('secret key', () => {
  it('is created once with mode 0600, then read back', async () => {
    const path = join(dir, 'keys', 'secret.key');
    const first = await readOrCreateKey({ kind: 'file', path });
    assert.equal(first.created, true);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const second = await readOrCreateKey({ kind: 'file', path });
    assert.equal(second.created, false);
    assert.deepEqual(second.key, first.key);
  });

  it('comes from PALLAS_SECRET_KEY (base64) and names what is wrong', async () => {
    const key = randomBytes(32);
    assert.deepEqual(await readKey({ kind: 'env', value: key.toString('base64') }), key);
    await assert.rejects(readKey({ kind: 'env', value: randomBytes(16).toString('base64') }), /PALLAS_SECRET_KEY: the key must be 32 bytes/);
    await assert.rejects(readKey({ kind: 'env', value: 'not base64!' }), /PALLAS_SECRET_KEY: not base64/);
    await assert.rejects(readKey({ kind: 'file', path: join(dir, 'missing.key') }), /missing\.key does not exist/);
  });
});

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({ write(chunk, _enc, cb) { text += chunk.toString(); cb(); } }),
    text: () => text,
  };
}

async function encryptCli(argv: string[], stdinText: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runEncryptSecret(argv, env, { stdin: Readable.from([Buffer.from(stdinText)]), stdout: out.stream, stderr: err.stream }, dir);
  return { code, out: out.text(), err: err.text() };
}

describe('pallas-agent encrypt-secret', () => {
  it('prints the encrypted password read from stdin', async () => {
    const keyFile = join(dir, 'print.key');
    const { code, out, err } = await encryptCli(['--secret-key-file', keyFile], `${PASSWORD}\n`);
    assert.equal(code, 0);
    assert.match(err, /created secret key file/);
    const value = out.trim();
    assert.equal(decryptSecret(value, await readKey({ kind: 'file', path: keyFile })), PASSWORD);
  });

  it('writes it into the config file: mode 0600, no clear password left, and the agent config decrypts it', async () => {
    const configPath = join(dir, 'agent.json');
    const keyFile = join(dir, 'write.key');
    await writeFile(configPath, JSON.stringify({ stateDir: 'st', driver: 'esxi', esxi: { url: 'https://esxi.example', user: 'root', password: PASSWORD, insecure: true } }), { mode: 0o644 });
    const { code, err } = await encryptCli(['--config', configPath, '--write', '--secret-key-file', keyFile], `${PASSWORD}\r\n`);
    assert.equal(code, 0, err);
    assert.match(err, /removed the clear esxi.password/);
    const text = await readFile(configPath, 'utf8');
    assert.ok(!text.includes(PASSWORD), 'clear password absent from the config file');
    assert.ok(!text.includes('"password"'));
    assert.equal((await stat(configPath)).mode & 0o777, 0o600);
    const parsed = JSON.parse(text);
    assert.equal(parsed.esxi.user, 'root');
    assert.match(parsed.esxi.passwordEncrypted, /^enc:v1:/);
    // No stray temp file with the clear text beside it.
    const names = await readdir(dir);
    assert.deepEqual(names.filter((n) => n.endsWith('.tmp')), []);

    const esxi = await resolveEsxi({}, {}, parsed.esxi, { kind: 'file', path: keyFile }, dir);
    assert.deepEqual(esxi, { url: 'https://esxi.example', user: 'root', password: PASSWORD, insecure: true });

    // A wrong key, or a modified value, stops the agent's start with the field's name.
    const otherKey = join(dir, 'other.key');
    await readOrCreateKey({ kind: 'file', path: otherKey });
    const wrong = await loadConfig(['--config', configPath, '--secret-key-file', otherKey], {}, dir).catch((e: unknown) => e);
    assert.ok(isAgentError(wrong, 'config_invalid'), String(wrong));
    assert.match((wrong as Error).message, /esxi\.passwordEncrypted: encrypted secret does not decrypt: wrong key/);
    const tampered = { ...parsed.esxi, passwordEncrypted: flip(parsed.esxi.passwordEncrypted, 4) };
    await assert.rejects(resolveEsxi({}, {}, tampered, { kind: 'file', path: keyFile }, dir), /esxi\.passwordEncrypted: .*modified/);
    const noKey = await loadConfig(['--config', configPath], {}, dir).catch((e: unknown) => e);
    assert.match((noKey as Error).message, /esxi\.passwordEncrypted: secret key file .*st\/secret\.key does not exist/);
  });

  it('uses PALLAS_SECRET_KEY when set, and never takes the password from an argument', async () => {
    const key = randomBytes(32);
    const { code, out } = await encryptCli([], PASSWORD, { PALLAS_SECRET_KEY: key.toString('base64') });
    assert.equal(code, 0);
    assert.equal(decryptSecret(out.trim(), key), PASSWORD);
    await assert.rejects(encryptCli(['--password', PASSWORD], ''), (e: unknown) => isAgentError(e, 'config_invalid') && /never from an argument/.test((e as Error).message));
    await assert.rejects(encryptCli(['--write'], PASSWORD), /--write needs --config/);
    await assert.rejects(encryptCli(['--secret-key-file', join(dir, 'x.key')], '\n'), /empty password/);
  });
});

describe('esxi connection settings', () => {
  const key = { kind: 'env', value: randomBytes(32).toString('base64') } as const;
  const TP = 'AB:'.repeat(31) + 'AB';

  it('flags > PALLAS_ESXI_* > file, field by field', async () => {
    const file = { url: 'https://file.example', user: 'file-user', password: 'file-pw', thumbprint: 'cd'.repeat(32) };
    const env = { PALLAS_ESXI_URL: 'https://env.example', PALLAS_ESXI_USER: 'env-user', PALLAS_ESXI_PASSWORD: 'env-pw', PALLAS_ESXI_THUMBPRINT: TP };
    assert.deepEqual(await resolveEsxi({}, {}, file, key, dir), { url: 'https://file.example', user: 'file-user', password: 'file-pw', thumbprint: 'cd'.repeat(32) });
    assert.deepEqual(await resolveEsxi({}, env, file, key, dir), { url: 'https://env.example', user: 'env-user', password: 'env-pw', thumbprint: TP });
    assert.deepEqual(await resolveEsxi({ url: 'https://flag.example', user: 'flag-user' }, env, file, key, dir), { url: 'https://flag.example', user: 'flag-user', password: 'env-pw', thumbprint: TP });
    assert.deepEqual(await resolveEsxi({}, { ...env, PALLAS_ESXI_THUMBPRINT: '', PALLAS_ESXI_INSECURE: '1' }, { ...file, thumbprint: undefined }, key, dir), { url: 'https://env.example', user: 'env-user', password: 'env-pw', insecure: true });
  });

  it('reads the CA from a PEM file', async () => {
    const pem = join(dir, 'ca.pem');
    await writeFile(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const c = await resolveEsxi({}, {}, { url: 'https://h', user: 'u', password: 'p', ca: pem }, key, dir);
    assert.match(c.ca!, /BEGIN CERTIFICATE/);
  });

  it('names the field in every error', async () => {
    const base = { url: 'https://h.example', user: 'u', password: 'p', insecure: true };
    const cases: Array<[Record<string, unknown>, NodeJS.ProcessEnv, RegExp]> = [
      [{ ...base, url: undefined }, {}, /esxi\.url is required/],
      [{ ...base, url: 'http://h' }, {}, /esxi\.url must be https/],
      [{ ...base, url: 'not a url' }, {}, /esxi\.url "not a url" is not a URL/],
      [{ ...base, user: undefined }, {}, /esxi\.user is required/],
      [{ ...base, password: undefined }, {}, /esxi\.password is required/],
      [{ ...base, passwordEncrypted: 'enc:v1:x' }, {}, /password or passwordEncrypted, not both/],
      [{ ...base, insecure: undefined }, {}, /esxi: say how to check the host's certificate/],
      [{ ...base, thumbprint: 'abc' }, {}, /esxi\.thumbprint must be a SHA-256 fingerprint/],
      [{ ...base, ca: join(dir, 'nope.pem') }, {}, /esxi\.ca: cannot read/],
      [base, { PALLAS_ESXI_INSECURE: 'maybe' }, /PALLAS_ESXI_INSECURE must be 1 or 0/],
      [base, { PALLAS_ESXI_PASSWORD: 'enc:v1:AAAA:BBBB:CCCC' }, /PALLAS_ESXI_PASSWORD: encrypted secret: iv must be 12 bytes/],
    ];
    for (const [file, env, re] of cases) {
      await assert.rejects(resolveEsxi({}, env, file as never, key, dir), (e: unknown) => isAgentError(e, 'config_invalid') && re.test((e as Error).message), String(re));
    }
  });

  it('a config file with an unknown esxi setting is refused by name', async () => {
    const path = join(dir, 'typo.json');
    await writeFile(path, JSON.stringify({ esxi: { url: 'https://h', pasword: 'x' } }));
    await assert.rejects(loadConfig(['--config', path], {}, dir), /esxi.*pasword.*unknown setting|unknown setting/);
  });
});
