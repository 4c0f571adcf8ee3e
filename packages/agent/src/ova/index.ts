export { OvaError, openOva, type OvaDisk, type OvaPackage } from './ova-package.js';
export { OvfError, parseOvf, unitBytes, type OvfDescriptor, type OvfDisk } from './ovf.js';
export { TarError, indexTar, type TarEntry } from './tar-index.js';
