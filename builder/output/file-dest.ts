import { createReadStream, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TsbuildError } from '../../layers/errors.js';
import { refusal, STDOUT_DEST, type ExportContext } from './exporter.js';

/**
 * Writes a single-file output. `write(file)` must leave either a complete file at `file` or none.
 * For `dest=-` the file is first completed in the workspace and only then streamed to the output
 * stream, so a build that fails never sends half an archive down a pipe.
 */
export async function writeFileDest(dest: string, context: ExportContext, write: (file: string) => Promise<void>): Promise<string> {
  if (dest !== STDOUT_DEST) {
    const file = path.resolve(dest);
    await mkdir(path.dirname(file), { recursive: true });
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

/** Refuses, before the build, a file destination that is an existing directory. */
export function checkFileDest(dest: string, what: string): void {
  if (dest === STDOUT_DEST) return;
  const file = path.resolve(dest);
  if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw refusal(`${what}: ${file} is a directory, and this output writes a file; give a file name`);
}
