/**
 * Files that pass the manager's upload checks (docs/artifacts.md#what-each-kind-must-be), for
 * tests that need an artifact of a kind but not a real one: a patch (a tar whose first file is
 * `pallas-patch.json`), an agent bundle's first line. OVAs: packages/agent/test/support/ova-builder.ts.
 */

/** A ustar archive of the given files (no directories), with the end-of-archive marker. */
export function tarOf(files: ReadonlyArray<{ name: string; data: Buffer | string }>): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const data = typeof f.data === 'string' ? Buffer.from(f.data) : f.data;
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A patch in the format the manager accepts: `pallas-patch.json` naming `version`, then `payload`. */
export function patchFile(version: string, payload: Buffer | string = 'payload'): Buffer {
  return tarOf([{ name: 'pallas-patch.json', data: JSON.stringify({ version }) }, { name: 'payload.bin', data: payload }]);
}

/** A file that passes the agent-bundle check (its first line) without being an agent. */
export function agentBundleFile(version: string, rest: Buffer | string = 'export {};\n'): Buffer {
  return Buffer.concat([Buffer.from(`// pallas-agent ${version}\n`), typeof rest === 'string' ? Buffer.from(rest) : rest]);
}
