import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const busyboxBinary = '/bin/busybox';
const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const group = 'root:x:0:\naudio:x:29:app\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n';

/**
 * Fills `dir` with a busybox root filesystem: `/bin/busybox` and a symlink for each of its applets
 * where busybox installs it, `/etc/passwd` and `/etc/group` with an `app` user (1000) in the groups
 * `app` (1000), `staff` (50) and `audio` (29), and a world-writable sticky `/tmp`.
 */
export async function createBusyboxRootfs(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await copyFile(busyboxBinary, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  const { stdout } = await promisify(execFile)(busyboxBinary, ['--list-full']);
  for (const applet of stdout.split('\n').filter((line) => line !== '' && line !== 'bin/busybox')) {
    const path = join(dir, applet);
    await mkdir(dirname(path), { recursive: true });
    await symlink('/bin/busybox', path);
  }
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc/passwd'), passwd);
  await writeFile(join(dir, 'etc/group'), group);
  await mkdir(join(dir, 'tmp'));
  await chmod(join(dir, 'tmp'), 0o1777);
}

/**
 * Creates what a caller of an isolation backend creates before a run: the `/proc`, `/dev` and
 * `/sys` mount points, plus an empty file for each file bind destination.
 */
export async function createMountPoints(rootfs: string, fileDestinations: readonly string[] = []): Promise<void> {
  for (const name of ['proc', 'dev', 'sys']) await mkdir(join(rootfs, name), { recursive: true });
  for (const destination of fileDestinations) {
    await mkdir(dirname(join(rootfs, destination)), { recursive: true });
    await writeFile(join(rootfs, destination), '');
  }
}
