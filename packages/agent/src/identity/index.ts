export { StateDir, type DeviceIdentity, DEVICE_FILE, CREDENTIAL_FILE, type Credential } from './state-dir.js';
