import { VM_LIMITS } from '@pallas/protocol/constants';
import { tooLongText } from './limits.js';

/** The create and edit forms' checks, with the protocol's own VM limits (the manager enforces the same). */
const NAME = new RegExp(VM_LIMITS.name.pattern);

export interface VmFormValues {
  name: string;
  vcpus: string;
  memoryMB: string;
  diskGB: string;
}

export type VmFormErrors = Partial<Record<keyof VmFormValues, string>>;

function integerIn(value: string, min: number, max: number, what: string): string | undefined {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n)) return `${what} must be a whole number`;
  if (n < min || n > max) return `${what} must be between ${min.toLocaleString('en')} and ${max.toLocaleString('en')}`;
  return undefined;
}

/** Checks a create/edit form before it is sent; `only` limits the check to the fields shown. */
export function validateVm(values: VmFormValues, only: Array<keyof VmFormValues> = ['name', 'vcpus', 'memoryMB', 'diskGB']): VmFormErrors {
  const errors: VmFormErrors = {};
  if (only.includes('name')) {
    if (values.name.length < VM_LIMITS.name.minLength) errors.name = 'Name is required';
    else if (values.name.length > VM_LIMITS.name.maxLength) errors.name = tooLongText(values.name.length, VM_LIMITS.name.maxLength);
    else if (!NAME.test(values.name)) errors.name = 'Use letters, digits, dot, dash, underscore and inner spaces';
  }
  if (only.includes('vcpus')) {
    const e = integerIn(values.vcpus, VM_LIMITS.vcpus.minimum, VM_LIMITS.vcpus.maximum, 'vCPUs');
    if (e) errors.vcpus = e;
  }
  if (only.includes('memoryMB')) {
    const e = integerIn(values.memoryMB, VM_LIMITS.memoryMB.minimum, VM_LIMITS.memoryMB.maximum, 'Memory (MiB)');
    if (e) errors.memoryMB = e;
  }
  if (only.includes('diskGB')) {
    const n = Number(values.diskGB);
    if (values.diskGB.trim() === '' || !Number.isFinite(n)) errors.diskGB = 'Disk size must be a number';
    else if (n <= VM_LIMITS.diskGB.exclusiveMinimum || n > VM_LIMITS.diskGB.maximum) errors.diskGB = `Disk size must be more than 0 and at most ${VM_LIMITS.diskGB.maximum.toLocaleString('en')} GB`;
  }
  return errors;
}
