import { createReadStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TsbuildError } from '../../layers/errors.js';
import { STDOUT_DEST, type ExportContext } from './exporter.js';

/**
 * Writes a single-file output. `write(file)` must leave either a complete file at `file` or none.
 * For `dest=-` the file is first completed in the workspace and only then streamed to the output
 * stream, so a build that fails never sends half an archive down a pipe.
 */
export async function writeFileDest(dest: string, context: ExportContext, write: (file: string) => Promise<void>): Promise<string> {
  if (dest !== STDOUT_DEST) {
    const file = path.resolve(dest);
    await write(file);
    return file;
  }
  const stdout = context.stdout;
  if (stdout === undefined) throw new TsbuildError('OUTPUT', 'dest=- needs an output stream, and this build was given none');
  const file = path.join(await context.workspace.newDir('stdout'), 'output.tar');
  await write(file);
  await pipeline(createReadStream(file), stdout, { end: false });
  return 'stdout';
}
