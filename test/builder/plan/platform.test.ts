import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hostPlatform, parsePlatform, platformArgs, samePlatform } from '../../../builder/plan/platform.js';
import { formatPlatform } from '../../../layers/platform.js';
import { TsbuildError } from '../../../layers/errors.js';
import type { Platform } from '../../../layers/types.js';

describe('parsePlatform', () => {
  const cases: [string, Platform][] = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/x86_64', { os: 'linux', architecture: 'amd64' }],
    ['linux/x86-64', { os: 'linux', architecture: 'amd64' }],
    ['linux/amd64/v1', { os: 'linux', architecture: 'amd64' }],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    ['linux/arm64', { os: 'linux', architecture: 'arm64' }],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64' }],
    ['linux/arm64/8', { os: 'linux', architecture: 'arm64' }],
    ['linux/aarch64/v8', { os: 'linux', architecture: 'arm64' }],
    ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/armel', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/arm/6', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux/arm/v5', { os: 'linux', architecture: 'arm', variant: 'v5' }],
    ['linux/i386', { os: 'linux', architecture: '386' }],
    ['linux/386', { os: 'linux', architecture: '386' }],
    ['linux/ppc64le', { os: 'linux', architecture: 'ppc64le' }],
    ['linux/s390x', { os: 'linux', architecture: 's390x' }],
    ['linux/riscv64', { os: 'linux', architecture: 'riscv64' }],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
    ['Linux/AMD64', { os: 'linux', architecture: 'amd64' }],
    [' linux/arm64 ', { os: 'linux', architecture: 'arm64' }],
  ];

  for (const [text, expected] of cases) {
    it(`parses ${JSON.stringify(text)}`, () => {
      assert.deepEqual(parsePlatform(text), expected);
    });
  }

  it('leaves no variant key when there is none', () => {
    assert.ok(!('variant' in parsePlatform('linux/arm64/v8')));
    assert.ok(!('variant' in parsePlatform('linux/amd64')));
  });

  for (const bad of ['', 'linux/', '/amd64', 'linux//v7', 'linux/arm/v7/extra', '  ']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parsePlatform(bad),
        (err: unknown) => {
          assert.ok(err instanceof TsbuildError);
          assert.equal(err.code, 'PLATFORM');
          assert.ok(err.message.includes(`"${bad}"`), err.message);
          assert.match(err.message, /expected os\/arch\[\/variant\]/);
          return true;
        },
      );
    });
  }
});

describe('formatPlatform', () => {
  it('writes os/arch and the variant when there is one', () => {
    assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64' }), 'linux/amd64');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: '' }), 'linux/arm64');
  });

  it('round-trips through parsePlatform in normal form', () => {
    for (const text of ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/386', 'windows/amd64']) {
      assert.equal(formatPlatform(parsePlatform(text)), text);
    }
    assert.equal(formatPlatform(parsePlatform('linux/aarch64/v8')), 'linux/arm64');
    assert.equal(formatPlatform(parsePlatform('linux/armhf')), 'linux/arm/v7');
  });
});

describe('samePlatform', () => {
  it('compares os, architecture and variant, an absent variant equal to an empty one', () => {
    assert.ok(samePlatform({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64', variant: '' }));
    assert.ok(samePlatform(parsePlatform('linux/arm'), parsePlatform('linux/armhf')));
    assert.ok(!samePlatform(parsePlatform('linux/arm/v6'), parsePlatform('linux/arm/v7')));
    assert.ok(!samePlatform(parsePlatform('linux/amd64'), parsePlatform('windows/amd64')));
  });
});

describe('platformArgs', () => {
  it('defines the BUILD* and TARGET* arguments', () => {
    const args = platformArgs({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(Object.fromEntries(args), {
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
      TARGETPLATFORM: 'linux/arm/v7',
      TARGETOS: 'linux',
      TARGETARCH: 'arm',
      TARGETVARIANT: 'v7',
    });
  });
});

describe('hostPlatform', () => {
  it('describes this machine in OCI terms', () => {
    const host = hostPlatform();
    assert.equal(host.os, process.platform);
    const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' };
    if (expected[process.arch]) assert.equal(host.architecture, expected[process.arch]);
    assert.deepEqual(parsePlatform(formatPlatform(host)), host);
  });
});
