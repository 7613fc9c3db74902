import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OciLayout } from '../../layers/oci-layout.js';

/**
 * The build's own scratch space: a work OCI layout for the blobs it writes, root filesystems
 * of stages, and temp files. Removed when the build ends, whatever the outcome.
 */
export class Workspace {
  private counter = 0;

  private constructor(
    readonly dir: string,
    readonly layout: OciLayout,
  ) {}

  static async create(parent: string = os.tmpdir()): Promise<Workspace> {
    const dir = await mkdtemp(path.join(parent, 'tsbuild-'));
    const layout = await OciLayout.open(path.join(dir, 'layout'), { create: true });
    return new Workspace(dir, layout);
  }

  /** A new empty directory for `purpose` (e.g. `rootfs`), unique within the build. */
  async newDir(purpose: string): Promise<string> {
    const dir = path.join(this.dir, `${purpose}-${++this.counter}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}
