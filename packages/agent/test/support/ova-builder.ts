/**
 * Builds small, valid OVAs for tests: an OVF descriptor (one VM, given vCPUs and memory, one
 * disk) and a streamOptimized VMDK made by `qemu-img convert` from a raw file, packed with tar
 * in OVA order (descriptor first).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TOOLS, missingToolsReason } from '@pallas/testkit';

const run = promisify(execFile);

/** Why OVAs cannot be built here, or undefined (for testkit's `skipUnless`). */
export const ovaSkipReason: string | undefined = missingToolsReason([TOOLS.qemuImg, TOOLS.tar]);

export interface OvaOptions {
  name?: string;
  vcpus?: number;
  memoryMB?: number;
  /** Virtual size of the disk in MiB. Default 16. */
  diskMiB?: number;
  /** Random (incompressible) MiB written at the start of the disk, so the VMDK has data to upload. Default 2. */
  dataMiB?: number;
  network?: string;
}

export function ovfXml(o: Required<Omit<OvaOptions, 'dataMiB'>> & { vmdkName: string; vmdkBytes: number }): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="${o.vmdkName}" ovf:id="file1" ovf:size="${o.vmdkBytes}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="${o.diskMiB}" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="${o.network}">
      <Description>The ${o.network} network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="${o.name}">
    <Info>A virtual machine</Info>
    <Name>${o.name}</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="otherLinux64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>${o.name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>${o.vcpus} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>${o.vcpus}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>${o.memoryMB}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>${o.memoryMB}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>${o.network}</rasd:Connection>
        <rasd:ElementName>Ethernet 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`;
}

/** Writes `<dir>/<name>.ova`; returns its path and the VMDK's size. */
export async function buildOva(dir: string, options: OvaOptions = {}): Promise<{ path: string; vmdkBytes: number }> {
  const o = { name: 'tiny-appliance', vcpus: 2, memoryMB: 512, diskMiB: 16, network: 'VM Network', ...options };
  const work = await mkdtemp(join(tmpdir(), 'pallas-ova-'));
  try {
    const raw = join(work, 'disk.raw');
    const data = randomBytes((options.dataMiB ?? 2) << 20);
    await writeFile(raw, data);
    await run('truncate', ['-s', `${o.diskMiB}M`, raw]);
    const vmdkName = `${o.name}-disk1.vmdk`;
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=streamOptimized', raw, join(work, vmdkName)]);
    const vmdkBytes = (await stat(join(work, vmdkName))).size;
    await writeFile(join(work, `${o.name}.ovf`), ovfXml({ ...o, vmdkName, vmdkBytes }));
    const path = join(dir, `${o.name}.ova`);
    await run('tar', ['--format=ustar', '-cf', path, '-C', work, `${o.name}.ovf`, vmdkName]);
    return { path, vmdkBytes };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
