import { XMLParser } from 'fast-xml-parser';

/** A managed object reference: `<_this type="VirtualMachine">vm-42</_this>`. */
export interface MoRef {
  type: string;
  value: string;
}

/** A parsed XML element: child elements by local name, attributes as `@_name`, text as `#text`. */
export type XmlNode = { [key: string]: unknown };

/**
 * What XML 1.0 cannot carry at all, not even as a character reference: C0 controls other than
 * tab, LF and CR, U+FFFE and U+FFFF, and unpaired surrogates (no UTF-8 for them).
 */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Text for an element or attribute. CR is written as `&#13;`: a parser turns a literal CR (and
 * CR LF) into LF, so a name or password with one would reach the host changed. Characters XML
 * cannot carry are refused here, with their position, rather than sent to a host that answers
 * with a parse fault.
 */
export function escapeXml(text: string): string {
  const bad = NOT_XML.exec(text);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new Error(`text for the vSphere API has U+${code} at position ${bad.index}, which XML cannot carry`);
  }
  return text.replace(/[&<>"'\r]/g, (c) => ESCAPES[c]!);
}
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' };

/**
 * Builds the inner XML of a request body. Values: a string/number/boolean is escaped text; a
 * `MoRef` is written with its `type` attribute; an array repeats the element; an object with
 * `$type` gets `xsi:type` (the vSphere API's polymorphic data objects); `undefined` is omitted.
 * Key order is kept: the vSphere schema is a sequence, so order matters.
 */
export function toXml(name: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'object' && RAW in value) return `<${name}${(value as RawXml).attrs}>${(value as RawXml)[RAW]}</${name}>`;
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

/**
 * XML written verbatim inside an element of the caller's name: for a data object the host
 * returned that must go back as it came (OvfManager's import spec into ImportVApp).
 */
export function rawXml(inner: string, attrs = ''): RawXml {
  return Object.freeze({ [RAW]: inner, attrs });
}
const RAW = Symbol('raw');
export interface RawXml {
  readonly [RAW]: string;
  readonly attrs: string;
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
// which fields are numbers, and a VM named "007" must stay a string. Character references are
// decoded (`htmlEntities`): hosts write some characters that way (govmomi's vcsim writes a tab
// in a VM's name as `&#x9;`), and without it the name would read back with the reference in it.
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
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
