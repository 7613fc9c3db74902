import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** Mount points of this process's mount namespace, from `/proc/self/mountinfo`, in mount order. */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points: string[] = [];
  for (const line of text.split('\n')) {
    // Fields: mount ID, parent ID, major:minor, root, mount point, ...
    const field = line.split(' ')[4];
    if (field !== undefined) points.push(unescapeOctal(field));
  }
  return points;
}

/** Whether `dir` (absolute) is itself a mount point. */
export async function isMountPoint(dir: string): Promise<boolean> {
  const wanted = path.resolve(dir);
  return (await mountPoints()).includes(wanted);
}

/** Mount points at or below `dir` (absolute), deepest first, the order to unmount them in. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = path.resolve(dir);
  const found = (await mountPoints()).filter((point) => point === root || point.startsWith(`${root}/`));
  return [...new Set(found)].reverse();
}

/** The kernel writes space, tab, newline and backslash in mount points as `\ooo` octal escapes. */
function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
