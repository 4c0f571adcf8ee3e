/**
 * The vSphere client's pieces that need no host: XML building and escaping, fault reading and
 * mapping, thumbprint normalization. (The client against a host: driver-esxi.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FUZZ_SEED, anyText } from '@pallas/testkit';
import { readMethodFault, readSoapFault } from '../src/drivers/esxi/vsphere/faults.js';
import { driverCodeOf, moRef, normalizeThumbprint, text, toXml } from '../src/drivers/esxi/vsphere/index.js';
import { envelope, parseXml } from '../src/drivers/esxi/vsphere/xml.js';

describe('vSphere XML', () => {
  it('escapes every value, writes MoRefs with their type and data objects with xsi:type, in key order', () => {
    const xml = toXml('spec', {
      $type: 'VirtualMachineConfigSpec',
      name: `a<b>&"c'`,
      numCPUs: 2,
      files: { vmPathName: '[ds 1]' },
      skip: undefined,
      deviceChange: [{ operation: 'add' }, { operation: 'remove' }],
      pool: moRef('ResourcePool', 'ha-root-pool'),
    });
    assert.equal(
      xml,
      '<spec xsi:type="VirtualMachineConfigSpec"><name>a&lt;b&gt;&amp;&quot;c&apos;</name><numCPUs>2</numCPUs>' +
        '<files><vmPathName>[ds 1]</vmPathName></files><deviceChange><operation>add</operation></deviceChange>' +
        '<deviceChange><operation>remove</operation></deviceChange><pool type="ResourcePool">ha-root-pool</pool></spec>',
    );
  });

  it('reads back any string it wrote, exactly, over all of Unicode; refuses what XML cannot carry (names are never parsed as numbers)', () => {
    // What XML 1.0 cannot carry, even escaped; everything else must round-trip, CR included.
    const notXml = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    const edge = fc.constantFrom('&amp;', '&nbsp;', '&#13;', '&#x9;', ']]>', '<![CDATA[x]]>', '<!--', "'\"", ' lead', 'trail ', '\r\n', '007');
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(anyText(80), edge, fc.tuple(anyText(20), edge, anyText(20)).map((p) => p.join(''))), (s) => {
        if (notXml.test(s)) {
          refused++;
          assert.throws(() => toXml('name', s), /text for the vSphere API has U\+[0-9A-F]{4,} at position \d+, which XML cannot carry/);
          return;
        }
        const xml = envelope('Echo', toXml('name', s));
        assert.doesNotMatch(xml, notXml, 'the document holds only characters XML allows');
        assert.doesNotMatch(xml, /\r/, 'no literal CR (a parser would turn it into LF)');
        const doc = parseXml(xml);
        const body = (doc.Envelope as Record<string, Record<string, unknown>>).Body!;
        assert.equal(text(body.Echo, 'name') ?? '', s);
      }),
      { numRuns: 1000, seed: FUZZ_SEED },
    );
    assert.ok(refused > 0, 'the generator reached characters XML cannot carry');
    const doc = parseXml(envelope('Echo', toXml('name', '007')));
    assert.equal(text((doc.Envelope as Record<string, Record<string, unknown>>).Body!.Echo, 'name'), '007');
  });
});

describe('vSphere faults', () => {
  it('reads a SOAP fault: type from xsi:type, the host message kept', () => {
    const doc = parseXml(
      '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>' +
        '<faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect user name or password.</faultstring>' +
        '<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>',
    );
    const fault = readSoapFault((doc.Envelope as Record<string, Record<string, Record<string, unknown>>>).Body!.Fault!);
    assert.equal(fault.faultType, 'InvalidLogin');
    assert.match(fault.message, /incorrect user name or password/);
  });

  it("reads a task's LocalizedMethodFault", () => {
    const doc = parseXml(
      '<error xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><fault xsi:type="NoDiskSpace"><datastore>ds1</datastore></fault>' +
        '<localizedMessage>There is not enough space on the file system for the selected operation.</localizedMessage></error>',
    );
    const fault = readMethodFault(doc.error as Record<string, unknown>);
    assert.equal(fault.faultType, 'NoDiskSpace');
    assert.match(fault.message, /not enough space/);
  });

  it('maps fault types onto driver error codes, host_error by default', () => {
    assert.deepEqual(
      ['InvalidLogin', 'NoDiskSpace', 'InsufficientResourcesFault', 'InvalidPowerState', 'InvalidState', 'ManagedObjectNotFound', 'SomethingNew'].map(driverCodeOf),
      ['unavailable', 'no_space', 'no_space', 'invalid_state', 'invalid_state', 'not_found', 'host_error'],
    );
  });
});

describe('thumbprints', () => {
  it('accepts SHA-256 hex with or without colons, any case; refuses anything else (a SHA-1 one too)', () => {
    const hex = 'ab'.repeat(32);
    const want = Array(32).fill('AB').join(':');
    assert.equal(normalizeThumbprint(hex), want);
    assert.equal(normalizeThumbprint(want.toLowerCase()), want);
    assert.throws(() => normalizeThumbprint('AB:'.repeat(19) + 'AB'), /SHA-256/);
    assert.throws(() => normalizeThumbprint('zz'.repeat(32)), /SHA-256/);
  });
});
