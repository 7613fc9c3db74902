import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDpkgStatus } from '../../../builder/attest/dpkg.js';
import { imagePurl } from '../../../builder/attest/image-purl.js';
import { isLicenseExpression } from '../../../builder/attest/license-expression.js';
import { parseOsRelease } from '../../../builder/attest/os-release.js';
import { packageUrl } from '../../../builder/attest/package-url.js';
import { spdxDocument } from '../../../builder/attest/spdx.js';
import { assertSpdxDocument } from './attestation-schemas.js';

test('dpkg status: removed packages are left out, continuation lines and status.d stanzas are read', () => {
  const status = [
    'Package: util-linux\nStatus: install ok installed\nArchitecture: amd64\nSource: util-linux (2.38.1-5)\nVersion: 2.38.1-5+deb12u3\nDescription: misc\n utilities\n .\n more',
    'Package: old-tool\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0',
    'Package: half\nStatus: install ok half-configured\nArchitecture: all\nVersion: 1:2.0-1',
    'Package: bsdutils\nStatus: install ok installed\nArchitecture: amd64\nSource: util-linux (2.38.1-5+deb12u3)\nVersion: 1:2.38.1-5+deb12u3',
  ].join('\n\n');
  const distro = { id: 'debian', versionId: '12' };
  assert.deepEqual(
    parseDpkgStatus(status, '/var/lib/dpkg/status', distro).map((p) => p.purl),
    [
      'pkg:deb/debian/util-linux@2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12',
      'pkg:deb/debian/half@1:2.0-1?arch=all&distro=debian-12',
      'pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12&upstream=util-linux',
    ],
  );
  // A distroless status.d file has no Status field: its package is installed.
  assert.deepEqual(parseDpkgStatus('Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n', '/var/lib/dpkg/status.d/tzdata', undefined).map((p) => p.purl), ['pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all']);
});

test('os-release values may be quoted, with shell escapes in double quotes', () => {
  const fields = parseOsRelease('ID=ubuntu\nVERSION_ID="22.04"\nNAME=\'Ubuntu\'\nPRETTY_NAME="A \\"quoted\\" name"\n# comment\n');
  assert.deepEqual(Object.fromEntries(fields), { ID: 'ubuntu', VERSION_ID: '22.04', NAME: 'Ubuntu', PRETTY_NAME: 'A "quoted" name' });
});

test('license expressions: SPDX syntax is accepted, free text is not', () => {
  for (const valid of ['MIT', 'GPL-2.0+', '(MIT OR Apache-2.0) AND BSD-3-Clause', 'GPL-2.0-or-later WITH Classpath-exception-2.0', 'LicenseRef-custom']) {
    assert.ok(isLicenseExpression(valid), valid);
  }
  for (const invalid of ['', 'GPL2+ with exceptions, see COPYING', 'SEE LICENSE IN LICENSE.md', 'MIT AND', '(MIT', 'MIT)', 'AND MIT', 'GPL2 or later']) {
    assert.ok(!isLicenseExpression(invalid), invalid);
  }
});

test('package URLs: segments percent-encoded, qualifiers sorted, empty ones left out; image names in their short form', () => {
  assert.equal(packageUrl({ type: 'npm', namespace: '@types', name: 'node', version: '20.1.0' }), 'pkg:npm/%40types/node@20.1.0');
  assert.equal(packageUrl({ type: 'apk', namespace: 'alpine', name: 'musl', version: '1.2', qualifiers: { distro: 'alpine-3.19', arch: 'x86_64', upstream: '' } }), 'pkg:apk/alpine/musl@1.2?arch=x86_64&distro=alpine-3.19');
  assert.equal(imagePurl('docker.io/library/alpine:3.19', { os: 'linux', architecture: 'amd64' }), 'pkg:docker/alpine@3.19?platform=linux%2Famd64');
  assert.equal(imagePurl('ghcr.io/org/tool@sha256:abc'), 'pkg:docker/ghcr.io/org/tool@sha256:abc');
  assert.equal(imagePurl('localhost:5000/app:1@sha256:abc'), 'pkg:docker/localhost:5000/app@1?digest=sha256:abc');
});

test('the SPDX document is valid, deterministic, and keeps a declared license that is not an expression as a comment', () => {
  const subject = { name: 'app:1', manifestDigest: `sha256:${'0'.repeat(64)}`, created: '2023-11-14T22:13:20.123Z' };
  const packages = [
    { type: 'apk' as const, name: 'b', version: '1', purl: 'pkg:apk/alpine/b@1', license: 'GPL2 or later', foundIn: '/lib/apk/db/installed' },
    { type: 'apk' as const, name: 'a', version: '1', purl: 'pkg:apk/alpine/a@1', license: 'MIT', foundIn: '/lib/apk/db/installed' },
  ];
  const doc = spdxDocument(subject, packages) as { creationInfo: { created: string }; packages: Array<Record<string, unknown>> };
  assertSpdxDocument(doc);
  assert.equal(doc.creationInfo.created, '2023-11-14T22:13:20Z');
  assert.deepEqual(doc.packages.slice(1).map((p) => [p.name, p.licenseDeclared, p.licenseComments]), [
    ['a', 'MIT', undefined],
    ['b', 'NOASSERTION', 'declared as "GPL2 or later", which is not an SPDX license expression'],
  ]);
  assert.equal(JSON.stringify(spdxDocument(subject, [...packages].reverse())), JSON.stringify(doc));
  assert.notEqual((spdxDocument({ ...subject, name: 'other:1' }, packages) as { documentNamespace: string }).documentNamespace, (doc as unknown as { documentNamespace: string }).documentNamespace);
});
