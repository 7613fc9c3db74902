/** Reading headers and bodies of undici responses: the one place registry code does it. */
import { TsbuildError } from '../layers/errors.js';

type Headers = Record<string, string | string[] | undefined>;

/** A header's first value. */
export function firstHeader(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A whole body, refused beyond `limit` bytes with a SIZE_MISMATCH error naming `label`. A body that
 * breaks off fails with whatever `broken` makes of the error.
 */
export async function readBody(body: AsyncIterable<Uint8Array> & { destroy(): unknown }, limit: number, label: string, broken: (error: unknown) => Error = (error) => error as Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      if (size > limit) {
        body.destroy();
        throw new TsbuildError('SIZE_MISMATCH', `${label} failed verification: more than the expected ${limit} bytes; nothing was cached`);
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (error) {
    if (error instanceof TsbuildError) throw error;
    throw broken(error);
  }
  return Buffer.concat(chunks);
}

/** The first `limit` bytes of a body as text; the rest is read and dropped. */
export async function readText(body: AsyncIterable<Uint8Array>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < limit) chunks.push(Buffer.from(chunk).subarray(0, limit - size));
    size += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}
