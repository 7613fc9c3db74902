import { readFileSync } from 'node:fs';
import { isErrnoCode } from '../../layers/fs-util.js';

/**
 * When process `pid` started (clock ticks since boot, field 22 of /proc/PID/stat), or undefined
 * when there is no such process or it has exited and only waits to be reaped (a zombie). With the
 * pid, it names one process for good: a pid is reused, never with the same start time.
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ESRCH')) return undefined;
    throw error;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
}
