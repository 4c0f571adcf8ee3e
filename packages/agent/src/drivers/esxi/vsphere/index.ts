// The vSphere Web Services client the esxi driver (and OVA import) build on.
export { VsphereClient, type VsphereClientOptions, type ServiceContent, type CallOptions } from './soap-client.js';
export { VsphereFault, driverCodeOf, faultError } from './faults.js';
export { createHostAgent, normalizeThumbprint, CertificateMismatchError, type CertificateTrust } from './tls-agent.js';
export { retrieve, retrieveAll, retrieveOne, type ObjectContent } from './property-collector.js';
export { waitForTask, taskRef } from './tasks.js';
export { moRef, toXml, escapeXml, list, child, text, num, bool, xsiType, readMoRef, type MoRef, type XmlNode } from './xml.js';
