import { XMLParser } from 'fast-xml-parser';

/** A managed object reference: `<_this type="VirtualMachine">vm-42</_this>`. */
export interface MoRef {
  type: string;
  value: string;
}

/** A parsed XML element: child elements by local name, attributes as `@_name`, text as `#text`. */
export type XmlNode = { [key: string]: unknown };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/**
 * Builds the inner XML of a request body. Values: a string/number/boolean is escaped text; a
 * `MoRef` is written with its `type` attribute; an array repeats the element; an object with
 * `$type` gets `xsi:type` (the vSphere API's polymorphic data objects); `undefined` is omitted.
 * Key order is kept: the vSphere schema is a sequence, so order matters.
 */
export function toXml(name: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map((v) => toXml(name, v)).join('');
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return `<${name}>${escapeXml(String(value))}</${name}>`;
  }
  if (isMoRef(value)) return `<${name} type="${escapeXml(value.type)}">${escapeXml(value.value)}</${name}>`;
  const obj = value as Record<string, unknown>;
  const type = typeof obj.$type === 'string' ? ` xsi:type="${escapeXml(obj.$type)}"` : '';
  let inner = '';
  for (const [key, child] of Object.entries(obj)) {
    if (key !== '$type') inner += toXml(key, child);
  }
  return `<${name}${type}>${inner}</${name}>`;
}

/** A MoRef, made so that `toXml` writes it as a reference and not a data object. */
export function moRef(type: string, value: string): MoRef {
  return Object.freeze({ [MOREF]: true, type, value }) as MoRef;
}
const MOREF = Symbol('moref');
function isMoRef(value: unknown): value is MoRef {
  return typeof value === 'object' && value !== null && MOREF in value;
}

export function envelope(method: string, bodyXml: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"' +
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
    `<soapenv:Body><${method} xmlns="urn:vim25">${bodyXml}</${method}></soapenv:Body></soapenv:Envelope>`
  );
}

// Namespace prefixes dropped (`xsi:type` becomes `@_type`), text kept as text: the caller knows
// which fields are numbers, and a VM named "007" must stay a string.
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
});

export function parseXml(xml: string): XmlNode {
  return parser.parse(xml) as XmlNode;
}

// --- Reading parsed nodes ---------------------------------------------------------------------

/** The element(s) under `key` as an array (the parser gives one element as itself, not a list). */
export function list(node: unknown, key: string): unknown[] {
  if (node === null || typeof node !== 'object') return [];
  const v = (node as XmlNode)[key];
  if (v === undefined || v === '') return [];
  return Array.isArray(v) ? v : [v];
}

export function child(node: unknown, key: string): XmlNode | undefined {
  const v = list(node, key)[0];
  return v !== null && typeof v === 'object' ? (v as XmlNode) : undefined;
}

/** Text of an element (or of `key` under it): a plain string or the `#text` of one with attributes. */
export function text(node: unknown, key?: string): string | undefined {
  const v = key === undefined ? node : list(node, key)[0];
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && '#text' in v) return String((v as XmlNode)['#text']);
  if (v !== null && typeof v === 'object') return ''; // an element with attributes and no text
  return undefined;
}

export function num(node: unknown, key?: string): number | undefined {
  const t = text(node, key);
  if (t === undefined || t === '') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

export function bool(node: unknown, key?: string): boolean | undefined {
  const t = text(node, key);
  return t === 'true' ? true : t === 'false' ? false : undefined;
}

/** The `xsi:type` of a polymorphic element. */
export function xsiType(node: unknown): string | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const t = (node as XmlNode)['@_type'];
  return typeof t === 'string' ? t.replace(/^.*:/, '') : undefined;
}

/** Reads a MoRef element (`<obj type="VirtualMachine">vm-1</obj>`). */
export function readMoRef(node: unknown): MoRef | undefined {
  if (node === null || typeof node !== 'object') return undefined;
  const type = (node as XmlNode)['@_type'];
  const value = (node as XmlNode)['#text'];
  return typeof type === 'string' && value !== undefined ? moRef(type, String(value)) : undefined;
}
