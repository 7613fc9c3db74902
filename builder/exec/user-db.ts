import { closeSync, constants, readFileSync } from 'node:fs';
import { TsbuildError } from '../../layers/errors.js';
import { RootDir } from '../../layers/native/in-root.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** The user a RUN step's process runs as. */
export interface ProcessUser extends Owner {
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/**
 * Resolves the owner of files a step writes, for `COPY --chown` and the directories `WORKDIR`
 * creates, as BuildKit's file operations do: `root` and numbers need no lookup (a numeric user
 * without a group gets gid = uid); a name is looked up in the root filesystem's `/etc/passwd`
 * (or `/etc/group`), and a name it does not list, or a missing file, leaves the id at 0 (a group
 * leaves the user's gid). `rootfs` is undefined when the stage has no files to look names up in
 * (an empty scratch stage, or `COPY --link`): a name is then an error.
 */
export function resolveOwner(spec: string, rootfs: string | undefined): Owner {
  const [userPart, groupPart] = splitSpec(spec);
  const lookup = (kind: string, name: string): string => {
    if (rootfs === undefined) throw new TsbuildError('UNKNOWN_USER', `unable to look up ${kind} ${name}: the stage has no files yet`);
    return rootfs;
  };
  const userId = fileOwnerId(userPart);
  const entry = userId === undefined ? readPasswd(lookup('user', userPart)).find((e) => e.name === userPart) : undefined;
  const uid = userId ?? entry?.uid ?? 0;
  const userGid = userId ?? entry?.gid ?? 0;
  if (groupPart === undefined) return { uid, gid: userGid };
  const groupId = fileOwnerId(groupPart);
  if (groupId !== undefined) return { uid, gid: groupId };
  const group = readGroups(lookup('group', groupPart)).find((g) => g.name === groupPart);
  return { uid, gid: group?.gid ?? userGid };
}

/** A user or group part that needs no lookup: `root` or a number. */
function fileOwnerId(part: string): number | undefined {
  return part === 'root' ? 0 : parseId(part);
}

/**
 * Resolves a `USER` value for running a process, as container runtimes do: a name or a uid known
 * to `/etc/passwd` takes its primary group and home; an unknown uid runs with gid 0 and home `/`;
 * supplementary groups are the `/etc/group` entries listing the user, unless a group is given.
 */
export function resolveProcessUser(spec: string | undefined, rootfs: string): ProcessUser {
  const [userPart, groupPart] = splitSpec(spec === undefined || spec === '' ? '0' : spec);
  const userId = parseId(userPart);
  const passwd = readPasswd(rootfs);
  const entry = userId === undefined ? findUser(passwd, userPart) : passwd.find((e) => e.uid === userId);
  const uid = userId ?? entry!.uid;
  const home = entry?.home || '/';
  if (groupPart !== undefined) return { uid, gid: resolveGroup(rootfs, groupPart), additionalGids: [], home };
  const gid = entry?.gid ?? 0;
  const name = entry?.name;
  const additionalGids =
    name === undefined ? [] : readGroups(rootfs).filter((g) => g.members.includes(name) && g.gid !== gid).map((g) => g.gid);
  return { uid, gid, additionalGids: [...new Set(additionalGids)], home };
}

function findUser(passwd: readonly PasswdEntry[], name: string): PasswdEntry {
  const entry = passwd.find((e) => e.name === name);
  if (!entry) throw new TsbuildError('UNKNOWN_USER', `unable to find user ${name}: no matching entries in passwd file`);
  return entry;
}

function resolveGroup(rootfs: string | undefined, spec: string): number {
  const groupId = parseId(spec);
  if (groupId !== undefined) return groupId;
  const group = readGroups(rootfs).find((g) => g.name === spec);
  if (!group) throw new TsbuildError('UNKNOWN_GROUP', `unable to find group ${spec}: no matching entries in group file`);
  return group.gid;
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

function readPasswd(rootfs: string | undefined): PasswdEntry[] {
  return readEtc(rootfs, 'etc/passwd').flatMap((fields) => {
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    return fields.length >= 4 && Number.isInteger(uid) && Number.isInteger(gid) ? [{ name: fields[0]!, uid, gid, home: fields[5] ?? '' }] : [];
  });
}

function readGroups(rootfs: string | undefined): GroupEntry[] {
  return readEtc(rootfs, 'etc/group').flatMap((fields) => {
    const gid = Number(fields[2]);
    const members = (fields[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
    return fields.length >= 3 && Number.isInteger(gid) ? [{ name: fields[0]!, gid, members }] : [];
  });
}

/**
 * Colon-separated records of a file in the root filesystem, opened inside it (symlinks on the way
 * stay in the root); none when it is missing. Read at once: a step's user is resolved before each RUN.
 */
function readEtc(rootfs: string | undefined, file: string): string[][] {
  if (rootfs === undefined) return [];
  const fd = RootDir.with(rootfs, (root) => root.tryOpen(file, constants.O_RDONLY, { followFinal: true }));
  if (fd === undefined) return [];
  let text: string;
  try {
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}
