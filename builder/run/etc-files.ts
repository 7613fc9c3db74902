import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BindMount } from '../isolation/backend.js';

/** The host name RUN steps see, the same for every build so outputs do not depend on it. */
export const buildHostname = 'tsbuild';

/**
 * Writes the `/etc/hosts` (with the `--add-host` entries, `host:ip`), `/etc/hostname` and `/etc/resolv.conf` a RUN step sees into `dir`, and
 * returns them as read-only bind mounts. The host's resolver configuration is used, or the one
 * systemd-resolved keeps when the host's points at its local stub.
 */
export async function etcBindMounts(dir: string, extraHosts: readonly string[] = []): Promise<BindMount[]> {
  const hosts = path.join(dir, 'hosts');
  const hostname = path.join(dir, 'hostname');
  const resolvConf = path.join(dir, 'resolv.conf');
  const extra = extraHosts.map((entry) => {
    const colon = entry.indexOf(':');
    return `${entry.slice(colon + 1)}\t${entry.slice(0, colon)}\n`;
  });
  await writeFile(hosts, `127.0.0.1\tlocalhost ${buildHostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n${extra.join('')}`);
  await writeFile(hostname, `${buildHostname}\n`);
  await writeFile(resolvConf, await hostResolvConf());
  return [
    { destination: '/etc/hosts', source: hosts, readonly: true },
    { destination: '/etc/hostname', source: hostname, readonly: true },
    { destination: '/etc/resolv.conf', source: resolvConf, readonly: true },
  ];
}

async function hostResolvConf(): Promise<string> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  if (!/^\s*nameserver\s+127\.0\.0\.53\b/m.test(text)) return text;
  return readFile('/run/systemd/resolve/resolv.conf', 'utf8').catch(() => text);
}
