import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { isDpkgDatabase } from '../../../builder/attest/dpkg.js';
import { findPackages } from '../../../builder/attest/sbom.js';
import { SparseRootfs } from '../../../builder/attest/sparse-rootfs.js';
import { TsbuildError } from '../../../layers/errors.js';
import { OciLayout } from '../../../layers/oci-layout.js';
import { RefNameAnnotation, type Manifest } from '../../../layers/types.js';
import { debianBookwormImage, testCacheDir } from '../../support/debian-image.js';
import { repoRoot } from '../../support/repo-root.js';
import { dir, file, fixtureFile, hardlink, layersOf, opaque, symlink, whiteout } from './layer-fixtures.js';

const run = promisify(execFile);
const fixtures = path.join(repoRoot(), 'test', 'fixtures', 'attest');

describe('SBOM package readers', () => {
  let work: string;
  let layout: OciLayout;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-sbom-'));
    layout = await OciLayout.open(path.join(work, 'layout'), { create: true });
  });
  after(() => rm(work, { recursive: true, force: true }));

  test('apk: records of /lib/apk/db/installed, found through a merged /lib symlink, with licenses and the distro from os-release', async () => {
    const layers = await layersOf(layout, [
      [
        dir('etc'),
        symlink('etc/os-release', '../usr/lib/os-release'),
        symlink('lib', 'usr/lib'),
        dir('usr'),
        dir('usr/lib'),
        dir('usr/lib/apk'),
        dir('usr/lib/apk/db'),
        await fixtureFile('usr/lib/apk/db/installed', path.join(fixtures, 'apk-installed')),
        await fixtureFile('usr/lib/os-release', path.join(fixtures, 'alpine-os-release')),
      ],
    ]);
    const packages = await findPackages(layers);
    assert.deepEqual(
      packages.map((p) => [p.name, p.version, p.purl, p.license, p.foundIn]),
      [
        ['musl', '1.2.4_git20230717-r4', 'pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1', 'MIT', '/lib/apk/db/installed'],
        ['busybox', '1.36.1-r15', 'pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1', 'GPL-2.0-only', '/lib/apk/db/installed'],
        ['libcrypto3', '3.1.4-r5', 'pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl', 'Apache-2.0', '/lib/apk/db/installed'],
        ['legacy-tool', '0.9-r0', 'pkg:apk/alpine/legacy-tool@0.9-r0?arch=x86_64&distro=alpine-3.19.1', 'GPL2+ with exceptions, see COPYING', '/lib/apk/db/installed'],
      ],
    );
  });

  test('npm: installed package.json files, scoped names, old-style licenses, and the lockfile adds pinned production packages only', async () => {
    const app = path.join(fixtures, 'npm-app');
    const layers = await layersOf(layout, [
      [
        dir('app'),
        await fixtureFile('app/package.json', path.join(app, 'package.json')),
        await fixtureFile('app/package-lock.json', path.join(app, 'package-lock.json')),
        dir('app/node_modules'),
        dir('app/node_modules/@scope'),
        dir('app/node_modules/@scope/tool'),
        await fixtureFile('app/node_modules/@scope/tool/package.json', path.join(app, 'modules', '@scope', 'tool', 'package.json')),
        dir('app/node_modules/left-pad'),
        await fixtureFile('app/node_modules/left-pad/package.json', path.join(app, 'modules', 'left-pad', 'package.json')),
        dir('app/node_modules/old-style'),
        await fixtureFile('app/node_modules/old-style/package.json', path.join(app, 'modules', 'old-style', 'package.json')),
        // A package's own test fixture is not an installed package.
        dir('app/node_modules/left-pad/test'),
        file('app/node_modules/left-pad/test/package.json', '{"name":"fixture","version":"0.0.0"}'),
      ],
    ]);
    const packages = await findPackages(layers);
    const byName = new Map(packages.map((p) => [p.name, p]));
    assert.deepEqual([...byName.keys()].sort(), ['@scope/tool', 'left-pad', 'not-installed', 'old-style']);
    assert.equal(byName.get('@scope/tool')?.purl, 'pkg:npm/%40scope/tool@2.1.0');
    assert.equal(byName.get('@scope/tool')?.license, 'MIT');
    assert.equal(byName.get('left-pad')?.foundIn, '/app/node_modules/left-pad/package.json');
    assert.equal(byName.get('old-style')?.license, 'MIT OR Apache-2.0');
    assert.equal(byName.get('not-installed')?.foundIn, '/app/package-lock.json');
    assert.equal(byName.get('not-installed')?.license, 'ISC');
  });

  test('later layers win: whiteouts, opaque directories, replaced files and hardlinks', async () => {
    const status = (pkgs: string[]): string => pkgs.map((p) => `Package: ${p}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n`).join('\n');
    const manifest = (name: string): string => JSON.stringify({ name, version: '1.0.0' });
    const layers = await layersOf(layout, [
      [
        dir('var'), dir('var/lib'), dir('var/lib/dpkg'), file('var/lib/dpkg/status', status(['old-a', 'old-b'])),
        dir('srv'), dir('srv/node_modules'), dir('srv/node_modules/gone'), file('srv/node_modules/gone/package.json', manifest('gone')),
        dir('opt'), dir('opt/node_modules'), dir('opt/node_modules/removed'), file('opt/node_modules/removed/package.json', manifest('removed')),
      ],
      [
        file('var/lib/dpkg/status', status(['new-a'])),
        opaque('srv/node_modules'), dir('srv/node_modules/kept'), file('srv/node_modules/kept/package.json', manifest('kept')),
        whiteout('opt/node_modules/removed'),
        dir('opt/node_modules/fresh'), file('opt/node_modules/fresh/package.json', manifest('fresh')),
        dir('opt/node_modules/zlinked'), hardlink('opt/node_modules/zlinked/package.json', 'opt/node_modules/fresh/package.json'),
      ],
      // The hardlink keeps the content its removed target had.
      [whiteout('opt/node_modules/fresh')],
    ]);
    const found = (await findPackages(layers)).map((p) => `${p.type}:${p.name}:${p.foundIn}`).sort();
    assert.deepEqual(found, ['deb:new-a:/var/lib/dpkg/status', 'npm:fresh:/opt/node_modules/zlinked/package.json', 'npm:kept:/srv/node_modules/kept/package.json']);
  });

  test('symlinks resolve inside the image: a link that climbs out of the root lands at the root', async () => {
    const layers = await layersOf(layout, [
      [
        dir('srv'), dir('srv/dpkg'), file('srv/dpkg/status', 'Package: inside\nStatus: install ok installed\nVersion: 2\n'),
        dir('var'), dir('var/lib'), symlink('var/lib/dpkg', '../../../../../../srv/dpkg'),
        dir('loop'), symlink('loop/a', 'b'), symlink('loop/b', 'a'),
      ],
    ]);
    const rootfs = await SparseRootfs.read(layers, isDpkgDatabase);
    assert.equal(rootfs.resolve('/var/lib/dpkg/status'), 'srv/dpkg/status');
    assert.equal(rootfs.resolve('loop/a/x'), undefined);
    assert.deepEqual((await findPackages(layers)).map((p) => [p.name, p.foundIn]), [['inside', '/var/lib/dpkg/status']]);
  });

  test('a layer that is not a readable tar fails the SBOM in one line naming the layer', async () => {
    const [good] = await layersOf(layout, [[dir('etc')]]);
    const gzipHead = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03, 0xff, 0xff, 0xff, 0xff]);
    await assert.rejects(
      findPackages([good!, () => Readable.from([gzipHead])]),
      (err: unknown) => err instanceof TsbuildError && /^cannot read layer 2 of the image for its SBOM: /.test(err.message) && !err.message.includes('\n'),
    );
  });

  test('dpkg: the Debian bookworm image lists exactly the packages dpkg-query reports, with versions and architectures', { timeout: 40 * 60_000 }, async (t) => {
    const cached = path.join(testCacheDir(), 'debian-bookworm-minbase');
    if (process.getuid?.() !== 0 && !(await run('test', ['-d', cached]).then(() => true, () => false))) {
      t.skip('building the Debian test image needs root (debootstrap)');
      return;
    }
    const { layoutDir, tag } = await debianBookwormImage();
    const debian = await OciLayout.open(layoutDir, { create: false });
    const entry = (await debian.readIndex()).manifests.find((m) => m.annotations?.[RefNameAnnotation] === tag)!;
    const image = await debian.readJson<Manifest>(entry.digest);
    const packages = await findPackages(image.layers.map((l) => () => createReadStream(debian.path(l.digest))));

    // dpkg's own reader on the same database, extracted with GNU tar.
    const admin = path.join(work, 'dpkg');
    await mkdir(path.join(admin, 'var/lib/dpkg/updates'), { recursive: true });
    await mkdir(path.join(admin, 'var/lib/dpkg/info'), { recursive: true });
    await run('tar', ['-xzf', debian.path(image.layers[0]!.digest), '-C', admin, 'var/lib/dpkg/status']);
    await writeFile(path.join(admin, 'var/lib/dpkg/available'), '');
    const { stdout } = await run('dpkg-query', [`--admindir=${path.join(admin, 'var/lib/dpkg')}`, '-W', '-f', '${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n']);
    const expected = stdout.split('\n').filter((line) => /^[a-z]i/.test(line)).map((line) => line.split('\t').slice(1).join(' ')).sort();
    assert.ok(expected.length > 50, `dpkg-query lists ${expected.length} packages`);
    assert.deepEqual(packages.map((p) => `${p.name} ${p.version} ${p.purl.match(/arch=([^&]+)/)?.[1]}`).sort(), expected);
    const bash = packages.find((p) => p.name === 'bash')!;
    assert.match(bash.purl, /^pkg:deb\/debian\/bash@[^?]+\?arch=[a-z0-9]+&distro=debian-12$/);
    const libc = packages.find((p) => p.name === 'libc6')!;
    assert.match(libc.purl, /&upstream=glibc$/);
  });
});
