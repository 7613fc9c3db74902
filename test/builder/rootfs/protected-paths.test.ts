import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyPath, protectPaths } from '../../../builder/rootfs/protected-paths.js';
import { TsbuildError } from '../../../layers/errors.js';

describe('protectPaths', () => {
  it('cleans paths lexically, drops duplicates and folds paths under another', () => {
    const paths = protectPaths(['/tmp/ws/', '/tmp/ws/layout', '/opt//tsbuild/./dist/..', '/opt/tsbuild', '/proc', '/proc/self', '/a/b/../c']);
    assert.deepEqual(paths.roots, ['a/c', 'opt/tsbuild', 'proc', 'tmp/ws']);
    assert.deepEqual([...paths.ancestors].sort(), ['', 'a', 'opt', 'tmp']);
  });

  it('keeps siblings that only share a name prefix apart', () => {
    const paths = protectPaths(['/tmp/ws', '/tmp/ws2', '/tmpx']);
    assert.deepEqual(paths.roots, ['tmp/ws', 'tmp/ws2', 'tmpx']);
  });

  it('refuses relative paths and any spelling of the root', () => {
    for (const bad of ['tmp/ws', '', './x']) assert.throws(() => protectPaths([bad]), (e: unknown) => e instanceof TsbuildError && e.code === 'IN_PLACE');
    for (const root of ['/', '//', '/..', '/tmp/..', '/./']) {
      assert.throws(() => protectPaths(['/proc', root]), (e: unknown) => e instanceof TsbuildError && /whole root filesystem/.test(e.message));
    }
  });

  it('protects nothing when given nothing', () => {
    const paths = protectPaths([]);
    assert.deepEqual(paths.roots, []);
    assert.equal(paths.ancestors.size, 0);
    assert.equal(classifyPath(paths, 'etc'), 'free');
  });
});

describe('classifyPath', () => {
  const paths = protectPaths(['/tmp/ws', '/usr/local/bin/node', '/etc/hosts', '/out/image']);

  it('finds protected paths and everything under them', () => {
    for (const rel of ['tmp/ws', 'tmp/ws/layout/index.json', 'usr/local/bin/node', 'etc/hosts', 'out/image', 'out/image/blobs']) {
      assert.equal(classifyPath(paths, rel), 'protected', rel);
    }
  });

  it('finds every directory above a protected path, the root included', () => {
    for (const rel of ['', 'tmp', 'usr', 'usr/local', 'usr/local/bin', 'etc', 'out']) assert.equal(classifyPath(paths, rel), 'ancestor', rel);
  });

  it('leaves everything else free, including names that merely start like protected ones', () => {
    for (const rel of ['tmp/ws2', 'tmp/w', 'tmp/other', 'usr/local/bin/nodejs', 'usr/local/lib', 'etc/hosts.allow', 'etc/hostname', 'var', 'outside', 'tm']) {
      assert.equal(classifyPath(paths, rel), 'free', rel);
    }
  });
});
