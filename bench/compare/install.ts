/**
 * The bench needs root (dockerd, runc, debootstrap) and the Debian packages of the builders it
 * compares against and of its fixtures; as root it installs the missing ones with apt-get.
 */
import { execFileSync } from 'node:child_process';
import { runCommand } from './command.js';

/** The builders, GNU time, the fixtures' tools, and what the rootless and in-place rows need (newuidmap, umoci). */
const NEEDED = ['docker.io', 'buildah', 'time', 'runc', 'skopeo', 'docker-registry', 'debootstrap', 'busybox-static', 'uidmap', 'umoci'];

function installed(pkg: string): boolean {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
  } catch {
    return false;
  }
}

/** Throws a one-line message when not root; installs missing packages, saying so on stderr. */
export async function ensureTools(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the bench must run as root: it starts dockerd and runs buildah, runc and debootstrap');
  const missing = NEEDED.filter((pkg) => !installed(pkg));
  if (missing.length === 0) return;
  process.stderr.write(`installing ${missing.join(' ')} with apt-get\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runCommand('apt-get', ['update', '-qq'], { env });
  await runCommand('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}
