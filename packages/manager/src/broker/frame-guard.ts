import type { Duplex } from 'node:stream';

/**
 * Caps the size of every MQTT packet a connection sends, before the packet parser buffers
 * it: the parser waits for a packet's whole "remaining length" (up to 256 MiB) in memory, so
 * one client announcing a huge packet and trickling bytes would hold that much.
 *
 * It taps the socket with a 'data' listener. Aedes reads the socket through 'readable' +
 * read(); with both listeners Node keeps the 'readable' mode and emits 'data' for each chunk
 * read, so the tap sees every byte in order without changing the flow, and destroys the
 * socket as soon as a fixed header announces more than `maxBytes` or is malformed.
 */
export function guardFrames(socket: Duplex, maxBytes: number, onViolation: (reason: string) => void): void {
  let skip = 0; // body bytes of the current packet still to pass
  let header: number[] = []; // fixed header bytes of the next packet, while incomplete
  socket.on('data', (chunk: Buffer) => {
    let i = 0;
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        skip -= n;
        i += n;
        continue;
      }
      header.push(chunk[i]!);
      i++;
      if (header.length === 1) continue; // packet type byte
      const last = header[header.length - 1]!;
      if (last & 0x80) {
        // Remaining length is at most 4 bytes (MQTT 2.2.3).
        if (header.length > 4) return violation('malformed remaining length');
        continue;
      }
      let length = 0;
      for (let k = header.length - 1; k >= 1; k--) length = length * 128 + (header[k]! & 0x7f);
      header = [];
      if (length + 5 > maxBytes) return violation(`packet of ${length} bytes announced; the limit is ${maxBytes}`);
      skip = length;
    }
  });
  function violation(reason: string): void {
    onViolation(reason);
    socket.destroy();
  }
}
