import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TsbuildError } from '../../layers/errors.js';
import type { Heredoc } from '../model/dockerfile.js';
import { chompHeredocContent, parseHeredocMarker } from '../frontend/parse-heredoc.js';

/** The process a RUN step starts, and any script file it needs placed in the rootfs. */
export interface RunCommand {
  readonly args: readonly string[];
  /** Root-relative path of a script written into the rootfs for this run only. */
  readonly scriptPath?: string;
}

/**
 * Turns a RUN step's arguments and heredocs into the command to execute, as BuildKit does: a RUN
 * that is nothing but one heredoc marker (`<<EOF`, `<<-"EOF"`) runs the heredoc as its script (directly when it starts with `#!`, else
 * through the shell); otherwise the heredoc bodies follow the command line, for the shell to read.
 */
export async function runCommand(args: readonly string[], heredocs: readonly Heredoc[], shellForm: boolean, rootfs: string): Promise<RunCommand> {
  if (heredocs.length === 0) return { args };
  if (!shellForm) throw new TsbuildError('BAD_RUN', 'heredocs need the shell form of RUN');
  const shell = args.slice(0, -1);
  const commandLine = args[args.length - 1] ?? '';
  const only = heredocs[0];
  if (only && parseHeredocMarker(commandLine) !== undefined) {
    const script = only.chomp ? chompHeredocContent(only.content) : only.content;
    if (!script.startsWith('#!')) return { args: [...shell, script] };
    const scriptPath = `.tsbuild-heredoc-${randomBytes(6).toString('hex')}`;
    await writeFile(path.join(rootfs, scriptPath), script);
    await chmod(path.join(rootfs, scriptPath), 0o755);
    // As BuildKit runs it: through the stage's shell, which executes the script by its path.
    return { args: [...shell, `/${scriptPath}`], scriptPath };
  }
  // The shell reads the bodies as written: it expands them and strips `<<-` tabs itself.
  return { args: [...shell, commandLine + heredocs.map((h) => `\n${h.content}${h.name}`).join('')] };
}
