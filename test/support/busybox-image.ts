import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { stat } from 'node:fs/promises';
import type { LayerEntry } from '../../layers/entry.js';
import { hostPlatform } from '../../builder/plan/platform.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type ImageConfig, type Manifest } from '../../layers/types.js';
import { writeLayer } from '../../layers/write-layer.js';

const busyboxBinary = '/bin/busybox';
const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const group = 'root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n';

const run = promisify(execFile);

/**
 * Writes a small busybox base image (Debian's busybox-static with a link for every applet, passwd and group with an
 * `app` user) into an OCI layout under `tag`, for tests that need a real base image.
 */
export async function writeBusyboxImage(dir: string, tag = 'latest'): Promise<void> {
  const layout = await OciLayout.open(dir, { create: true });
  const binary = await stat(busyboxBinary);
  const mtime = 1700000000;
  const dirEntry = (path: string, mode = 0o755): LayerEntry => ({ path, type: 'directory', mode, uid: 0, gid: 0, mtime });
  const textEntry = (path: string, text: string): LayerEntry => ({
    path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: Buffer.byteLength(text),
    open: () => Readable.from([Buffer.from(text)]),
  });
  const applets = (await run(busyboxBinary, ['--list-full'])).stdout.split('\n').filter((p) => p !== '' && p.includes('/') && p !== 'bin/busybox');
  const entries: LayerEntry[] = [
    ...['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin'].map((dir) => dirEntry(dir)),
    { path: 'bin/busybox', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime, size: binary.size, open: () => createReadStream(busyboxBinary) },
    ...applets.map((applet): LayerEntry => ({ path: applet, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime, linkTarget: '/bin/busybox' })),
    dirEntry('etc'),
    textEntry('etc/passwd', passwd),
    textEntry('etc/group', group),
    dirEntry('home'),
    { ...dirEntry('home/app'), uid: 1000, gid: 1000 },
    dirEntry('tmp', 0o1777),
  ];
  const layer = await writeLayer(entries, layout, { compression: 'gzip' });
  const config: ImageConfig = {
    created: new Date(mtime * 1000).toISOString(),
    ...hostPlatform(),
    config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'BASE_ONLY=yes'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: new Date(mtime * 1000).toISOString(), created_by: 'busybox-static fixture' }],
  };
  const configDescriptor = await layout.writeJson(config, MediaType.ImageConfig);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDescriptor, layers: [layer.descriptor] };
  await layout.addImage(await layout.writeJson(manifest, MediaType.ImageManifest), [tag]);
}
