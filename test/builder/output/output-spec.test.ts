import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { ImageAnnotations, parseAnnotation } from '../../../builder/output/annotations.js';
import { normalizedName, ociRefName } from '../../../builder/output/image-names.js';
import { ociLayerDescriptor } from '../../../builder/output/oci-media-types.js';
import { parseOutputSpec } from '../../../builder/output/output-spec.js';
import { prepareOutputs, type OutputRequest } from '../../../builder/output/prepare-outputs.js';
import { MediaType, type Digest } from '../../../layers/types.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };
const pipe = new PassThrough();

function refused(request: Partial<OutputRequest>, pattern: RegExp): void {
  assert.throws(() => prepareOutputs({ storeDir: '/nonexistent/store', platforms: [amd64], ...request }), pattern);
}

describe('--output values', () => {
  test('type=oci is a tar when tar=true, when dest ends in .tar or is -, and a directory otherwise', () => {
    assert.deepEqual(parseOutputSpec('type=oci,dest=out'), { type: 'oci', dest: 'out', tar: false });
    assert.deepEqual(parseOutputSpec('type=oci,dest=out,tar=true'), { type: 'oci', dest: 'out', tar: true });
    assert.deepEqual(parseOutputSpec('type=oci,dest=img.tar'), { type: 'oci', dest: 'img.tar', tar: true });
    assert.deepEqual(parseOutputSpec('type=oci,dest=-'), { type: 'oci', dest: '-', tar: true });
    assert.deepEqual(parseOutputSpec('type=oci,dest=img.tar,tar=false'), { type: 'oci', dest: 'img.tar', tar: false });
    assert.throws(() => parseOutputSpec('type=oci,dest=-,tar=false'), /tar=false writes a directory, which cannot go to stdout/);
  });

  test('local, tar, docker and registry, with names in a quoted field as buildx reads them', () => {
    assert.deepEqual(parseOutputSpec('type=local,dest=rootfs'), { type: 'local', dest: 'rootfs' });
    assert.deepEqual(parseOutputSpec('type=tar,dest=-'), { type: 'tar', dest: '-' });
    assert.deepEqual(parseOutputSpec('type=docker,dest=img.tar,"name=a:1,b:2"'), { type: 'docker', dest: 'img.tar', names: ['a:1', 'b:2'] });
    assert.deepEqual(parseOutputSpec('type=registry,name=localhost:5000/app:1'), { type: 'registry', names: ['localhost:5000/app:1'] });
    assert.deepEqual(parseOutputSpec('type=registry'), { type: 'registry' });
  });

  test('a bare path is a local output and - a tar on stdout, as in buildx', () => {
    assert.deepEqual(parseOutputSpec('out/rootfs'), { type: 'local', dest: 'out/rootfs' });
    assert.deepEqual(parseOutputSpec('-'), { type: 'tar', dest: '-' });
  });

  test('bad values name the value and the fix', () => {
    assert.throws(() => parseOutputSpec('type=local,dest=-'), /^TsbuildError: invalid --output "type=local,dest=-": type=local writes a directory; use type=tar,dest=- for stdout$/);
    assert.throws(() => parseOutputSpec('type=docker'), /dest is required: tsbuild loads into no daemon/);
    assert.throws(() => parseOutputSpec('type=docker,dest=x.tar,tar=false'), /type=docker always writes a tar archive/);
    assert.throws(() => parseOutputSpec('type=tar,dest=x,compression=zstd'), /unknown key "compression" for type=tar/);
    assert.throws(() => parseOutputSpec('type=image,dest=x'), /unsupported output type "image" \(supported: type=oci/);
    assert.throws(() => parseOutputSpec('type=oci,dest=x,"name=a'), /unterminated double quote/);
    assert.throws(() => parseOutputSpec('type=oci,dest=x,tar=yes'), /tar must be true or false/);
  });
});

describe('image names', () => {
  test('are normalised as BuildKit does, and the ref name is the tag', () => {
    assert.equal(normalizedName('app:1'), 'docker.io/library/app:1');
    assert.equal(normalizedName('app'), 'docker.io/library/app:latest');
    assert.equal(normalizedName('team/app:2'), 'docker.io/team/app:2');
    assert.equal(normalizedName('localhost:5000/app'), 'localhost:5000/app:latest');
    assert.equal(ociRefName('localhost:5000/app:latest'), 'latest');
    assert.equal(ociRefName('docker.io/library/app:1.2-rc'), '1.2-rc');
  });

  test('a bad name or one with a digest is refused with the fix', () => {
    assert.throws(() => normalizedName('App:1'), /invalid image name "App:1": repository name must be lowercase; use NAME\[:TAG\]/);
    assert.throws(() => normalizedName(`app@sha256:${'a'.repeat(64)}`), /cannot carry a digest/);
  });
});

describe('--annotation values', () => {
  test('parse as buildx does: the manifest by default, levels, several levels, a platform', () => {
    assert.deepEqual(parseAnnotation('org.example.a=1=2'), [{ level: 'manifest', key: 'org.example.a', value: '1=2', text: 'org.example.a=1=2' }]);
    assert.deepEqual(parseAnnotation('index,manifest-descriptor:k=v'), [
      { level: 'index', key: 'k', value: 'v', text: 'index,manifest-descriptor:k=v' },
      { level: 'manifest-descriptor', key: 'k', value: 'v', text: 'index,manifest-descriptor:k=v' },
    ]);
    assert.deepEqual(parseAnnotation('manifest[linux/arm64]:k=v'), [{ level: 'manifest', platform: arm64, key: 'k', value: 'v', text: 'manifest[linux/arm64]:k=v' }]);
    assert.throws(() => parseAnnotation('k'), /expected KEY=VALUE/);
    assert.throws(() => parseAnnotation('config:k=v'), /unknown level "config"/);
    assert.throws(() => parseAnnotation('index[linux/amd64]:k=v'), /applies to the whole index: drop \[linux\/amd64\]/);
  });

  test('a platform-specific value wins over the general one on that platform only', () => {
    const annotations = new ImageAnnotations([...parseAnnotation('k=all'), ...parseAnnotation('manifest[linux/arm64]:k=arm')]);
    assert.deepEqual(annotations.manifest(arm64), { k: 'arm' });
    assert.deepEqual(annotations.manifest(amd64), { k: 'all' });
    assert.equal(annotations.index(), undefined);
  });
});

describe('checks before the build', () => {
  test('type=docker with two platforms fails and says what to use', () => {
    refused({ platforms: [amd64, arm64], targets: [parseOutputSpec('type=docker,dest=x.tar')] }, /^TsbuildError: type=docker holds one platform only, and 2 are built; use type=oci/);
  });

  test('bad -t names, pushes without names, two outputs on stdout and stdout without a stream are refused', () => {
    refused({ tags: ['Bad:1'], targets: [parseOutputSpec('type=local,dest=x')] }, /invalid image name "Bad:1"/);
    refused({ targets: [parseOutputSpec('type=registry')] }, /pushing needs a name/);
    refused({ targets: [parseOutputSpec('type=tar,dest=-'), parseOutputSpec('type=oci,dest=-')], stream: pipe }, /only one output can write to stdout/);
    refused({ targets: [parseOutputSpec('type=tar,dest=-')] }, /dest=- cannot write to stdout: this build was given no output stream; give dest=FILE/);
    refused({ targets: [parseOutputSpec('type=tar,dest=-')], stream: Object.assign(new PassThrough(), { isTTY: true }) }, /it is a terminal/);
  });

  test('a destination of the wrong kind is refused: a directory for a file, a foreign directory for a layout', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-output-spec-'));
    try {
      await writeFile(path.join(dir, 'file'), 'x');
      await mkdir(path.join(dir, 'foreign'));
      await writeFile(path.join(dir, 'foreign', 'notes.txt'), 'x');
      await mkdir(path.join(dir, 'empty'));
      const at = (name: string) => path.join(dir, name);
      refused({ targets: [parseOutputSpec(`type=tar,dest=${at('empty')}`)] }, /type=tar: .*empty is a directory, and this output writes a file; give a file name/);
      refused({ targets: [parseOutputSpec(`type=docker,dest=${at('empty')}`)] }, /type=docker: .* is a directory/);
      refused({ targets: [parseOutputSpec(`type=oci,dest=${at('empty')},tar=true`)] }, /is a directory, and this output writes a tar there/);
      refused({ targets: [parseOutputSpec(`type=oci,dest=${at('file')}`)] }, /is a file, and this output writes a layout directory there/);
      refused({ targets: [parseOutputSpec(`type=oci,dest=${at('foreign')}`)] }, /is a directory that is not an OCI layout/);
      refused({ targets: [parseOutputSpec(`type=local,dest=${at('file')}`)] }, /type=local: .*file exists and is not a directory/);
      prepareOutputs({ storeDir: '/x', platforms: [amd64], targets: [parseOutputSpec(`type=oci,dest=${at('empty')}`), parseOutputSpec(`type=local,dest=${at('foreign')}`)] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('annotations that no output can carry are refused', () => {
    refused({ annotations: ['index:k=v'] }, /a single-platform build has no image index/);
    refused({ annotations: ['manifest[linux/arm64]:k=v'] }, /linux\/arm64 is not built \(building linux\/amd64\)/);
    refused({ annotations: ['k=v'], targets: [parseOutputSpec('type=docker,dest=x.tar')] }, /cannot apply to type=docker/);
    refused({ annotations: ['k=v'], targets: [parseOutputSpec('type=local,dest=x')] }, /--annotation needs an image output/);
    refused({ tags: ['r.example/a:1'], annotations: ['manifest-descriptor:k=v'], targets: [parseOutputSpec('type=registry')] }, /single-platform push, which has no index/);
    refused({ platforms: [amd64, arm64], tags: ['r.example/a:1'], annotations: ['index-descriptor:k=v'], targets: [parseOutputSpec('type=registry')] }, /stores no descriptor of the index; use index:/);
    const ok = prepareOutputs({ storeDir: '/x', platforms: [amd64, arm64], annotations: ['index,index-descriptor,manifest:k=v'], targets: [parseOutputSpec('type=oci,dest=x')] });
    assert.deepEqual(ok.annotations.indexDescriptor(), { k: 'v' });
  });
});

test('Docker layer media types become their OCI equivalents; the digest stays', () => {
  const digest = `sha256:${'b'.repeat(64)}` as Digest;
  assert.deepEqual(ociLayerDescriptor({ mediaType: MediaType.DockerLayerGzip, digest, size: 3 }), { mediaType: MediaType.LayerGzip, digest, size: 3 });
  assert.deepEqual(ociLayerDescriptor({ mediaType: MediaType.LayerZstd, digest, size: 3 }), { mediaType: MediaType.LayerZstd, digest, size: 3 });
  assert.throws(() => ociLayerDescriptor({ mediaType: 'application/x-unknown', digest, size: 3 }), /has no OCI image layer equivalent/);
});
