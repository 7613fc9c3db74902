/**
 * How to start this same node again. Usually that is `process.execPath`; but a builder image that
 * keeps node and its libraries in a directory of their own starts it through the dynamic loader
 * (`ld.so --library-path DIR node ...`), and then `process.execPath` is the loader itself, which
 * cannot run a script. The command that started this process, in /proc/self/cmdline, says how.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Loader options that take a value (glibc's ld.so and musl's ldso). */
const loaderOptionsWithValue = new Set(['--library-path', '--preload', '--argv0', '--audit', '--glibc-hwcaps-prepend', '--glibc-hwcaps-mask']);

let cached: readonly string[] | undefined;

/** Whether `file` is a dynamic loader (glibc's `ld-linux*.so*`, musl's `ld-musl-*.so.1`). */
export function isDynamicLoader(file: string): boolean {
  return /^ld-(linux|musl)[^/]*\.so/.test(path.basename(file));
}

/**
 * The loader part of `cmdline` (the loader, its options and the program it runs), given the
 * process's argv as /proc/PID/cmdline lists it and its `execPath`; just `[execPath]` when node
 * was started directly.
 */
export function startCommand(cmdline: readonly string[], execPath: string): string[] {
  if (!isDynamicLoader(execPath)) return [execPath];
  for (let index = 1; index < cmdline.length; index++) {
    const arg = cmdline[index] as string;
    if (loaderOptionsWithValue.has(arg)) index++;
    else if (!arg.startsWith('--')) return [execPath, ...cmdline.slice(1, index + 1)];
  }
  throw new Error(`cannot tell which program the loader ${execPath} runs`);
}

/** The argv prefix that starts this node binary again (add a script and its arguments). */
export function nodeCommand(): readonly string[] {
  cached ??= startCommand(readFileSync('/proc/self/cmdline', 'utf8').split('\0'), process.execPath);
  return cached;
}

/** The node binary itself (not the loader that may have started it). */
export function nodeBinary(): string {
  return nodeCommand().at(-1) as string;
}
