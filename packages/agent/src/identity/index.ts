export { StateDir, DeviceIdentity, DEVICE_FILE, CREDENTIAL_FILE, type Credential } from './state-dir.js';
export { writeFileAtomic } from './atomic-file.js';
