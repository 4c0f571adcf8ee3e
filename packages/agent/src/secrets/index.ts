export { SECRET_PREFIX, SecretError, decryptSecret, encryptSecret, isEncryptedSecret } from './secret-box.js';
export { SECRET_KEY_FILE_NAME, readKey, readOrCreateKey, type KeySource } from './key-store.js';
