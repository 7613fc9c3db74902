/** Line-based, synchronous reads and writes on the launcher's control socket. */
import { readSync, writeSync } from 'node:fs';
import { controlFd } from './config.js';
import { poll } from './syscalls.js';

const POLLIN = 0x1;
let pending = Buffer.alloc(0);

export function sendLine(line: string): void {
  writeSync(controlFd, `${line}\n`);
}

/** The next line from tsbuild (blocking); throws when tsbuild closed the socket. */
export function readLine(): string {
  for (;;) {
    const newline = pending.indexOf(0x0a);
    if (newline >= 0) {
      const line = pending.subarray(0, newline).toString('utf8');
      pending = pending.subarray(newline + 1);
      return line;
    }
    const pollfd = Buffer.alloc(8);
    pollfd.writeInt32LE(controlFd, 0);
    pollfd.writeInt16LE(POLLIN, 4);
    poll(pollfd, -1);
    const chunk = Buffer.alloc(65536);
    let length: number;
    try {
      length = readSync(controlFd, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw error;
    }
    if (length === 0) throw new Error('tsbuild closed the control channel');
    pending = Buffer.concat([pending, chunk.subarray(0, length)]);
  }
}
