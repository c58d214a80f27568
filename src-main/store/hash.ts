import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface FileDigest {
  /** Lowercase hex. */
  sha256: string;
  bytes: number;
}

/** SHA-256 and size of a file, streamed (memory bounded for multi-GB checkpoints). */
export async function fileSha256(file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    bytes += buf.length;
    hash.update(buf);
  }
  return { sha256: hash.digest('hex'), bytes };
}
