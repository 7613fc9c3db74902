import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { resolveInRoot } from '../fs/resolve-path.js';

export interface Owner {
  uid: number;
  gid: number;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

/**
 * Resolves a `--chown`/`USER` spec (`user`, `user:group`, names or numbers) against the root
 * filesystem's `/etc/passwd` and `/etc/group`. A numeric user without a group gets gid = uid; a
 * named user gets its primary group, as Docker does.
 */
export async function resolveOwner(spec: string, rootfs: string | undefined): Promise<Owner> {
  const [userPart, groupPart] = splitSpec(spec);
  const userId = parseId(userPart);
  let uid: number;
  let primaryGid: number;
  if (userId !== undefined) {
    uid = userId;
    primaryGid = userId;
  } else {
    const entry = (await readPasswd(rootfs)).find((e) => e.name === userPart);
    if (!entry) throw new TsbuildError('UNKNOWN_USER', `unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
    primaryGid = entry.gid;
  }
  if (groupPart === undefined) return { uid, gid: primaryGid };
  const groupId = parseId(groupPart);
  if (groupId !== undefined) return { uid, gid: groupId };
  const group = (await readGroup(rootfs)).get(groupPart);
  if (group === undefined) throw new TsbuildError('UNKNOWN_GROUP', `unable to find group ${groupPart}: no matching entries in group file`);
  return { uid, gid: group };
}

function splitSpec(spec: string): [string, string | undefined] {
  const colon = spec.indexOf(':');
  const user = colon < 0 ? spec : spec.slice(0, colon);
  const group = colon < 0 ? undefined : spec.slice(colon + 1);
  if (user === '' || group === '') throw new TsbuildError('BAD_OWNER', `invalid user:group "${spec}"`);
  return [user, group];
}

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const id = Number(text);
  if (id > 0xffffffff) throw new TsbuildError('BAD_OWNER', `id out of range: ${text}`);
  return id;
}

async function readPasswd(rootfs: string | undefined): Promise<PasswdEntry[]> {
  const text = await readEtc(rootfs, 'etc/passwd');
  return text.flatMap((fields) => {
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    return fields.length >= 4 && Number.isInteger(uid) && Number.isInteger(gid) ? [{ name: fields[0]!, uid, gid }] : [];
  });
}

async function readGroup(rootfs: string | undefined): Promise<Map<string, number>> {
  const groups = new Map<string, number>();
  for (const fields of await readEtc(rootfs, 'etc/group')) {
    const gid = Number(fields[2]);
    if (fields.length >= 3 && Number.isInteger(gid) && !groups.has(fields[0]!)) groups.set(fields[0]!, gid);
  }
  return groups;
}

/** Colon-separated records of a file in the root filesystem; none when it is missing. */
async function readEtc(rootfs: string | undefined, file: string): Promise<string[][]> {
  if (rootfs === undefined) return [];
  try {
    const real = await resolveInRoot(rootfs, file, 'rootfs', true);
    const text = await readFile(path.join(rootfs, real), 'utf8');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'))
      .map((line) => line.split(':'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
