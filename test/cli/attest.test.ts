import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { hostPlatform } from '../../builder/plan/platform.js';
import { formatPlatform } from '../../layers/platform.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { RefNameAnnotation, type Manifest } from '../../layers/types.js';
import { assertInTotoStatement, assertSlsaProvenance, assertSpdxDocument } from '../builder/attest/attestation-schemas.js';
import { debianBookwormImage } from '../support/debian-image.js';
import { assertValidImageSpec } from '../support/image-spec-schema.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';
import { validateLayout } from '../support/validate-layout.js';
import { tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

type Json = Record<string, any>;

describe('--provenance and --sbom', { skip: isRoot ? false : 'building the Debian base image needs root (debootstrap)', timeout: 40 * 60_000 }, () => {
  let work: string;
  let registry: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let ctx: string;
  let base: string;
  let baseDigest: string;
  let dpkgPackages: string[];

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-attest-'));
    registry = await startRegistry();
    const debian = await debianBookwormImage();
    base = `${registry.host}/library/debian:bookworm`;
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${debian.layoutDir}:${debian.tag}`, `docker://${base}`]);
    baseDigest = (await run('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${base}`])).stdout.trim();
    dpkgPackages = await dpkgQuery(debian.layoutDir, debian.tag);
    ctx = path.join(work, 'context');
    await mkdir(ctx);
    const app = path.join(repoRoot(), 'test', 'fixtures', 'attest', 'npm-app');
    await cp(app, path.join(ctx, 'app'), { recursive: true });
    await cp(path.join(app, 'modules'), path.join(ctx, 'app', 'node_modules'), { recursive: true });
    await rm(path.join(ctx, 'app', 'modules'), { recursive: true });
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${base}\nARG GREETING\nCOPY app /app\nLABEL greeting=$GREETING\n`);
    env = { SOURCE_DATE_EPOCH: '1700000000', TSBUILD_CACHE_DIR: path.join(work, 'cache'), TSBUILD_STORE: path.join(work, 'store') };
  });

  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** dpkg's own reading of the base image's database: `NAME VERSION` of each installed package. */
  async function dpkgQuery(layoutDir: string, tag: string): Promise<string[]> {
    const layout = await OciLayout.open(layoutDir, { create: false });
    const entry = (await layout.readIndex()).manifests.find((m) => m.annotations?.[RefNameAnnotation] === tag)!;
    const manifest = await layout.readJson<Manifest>(entry.digest);
    const admin = path.join(work, 'dpkg-admin');
    await mkdir(path.join(admin, 'var/lib/dpkg/updates'), { recursive: true });
    await run('tar', ['-xzf', layout.path(manifest.layers[0]!.digest), '-C', admin, 'var/lib/dpkg/status']);
    const { stdout } = await run('dpkg-query', [`--admindir=${path.join(admin, 'var/lib/dpkg')}`, '-W', '-f', '${db:Status-Abbrev}\t${Package} ${Version}\n']);
    return stdout.split('\n').filter((line) => /^[a-z]i/.test(line)).map((line) => line.split('\t')[1]!).sort();
  }

  async function registryJson(repository: string, kind: 'manifests' | 'blobs', digest: string): Promise<Json> {
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
    const response = await fetch(`http://${registry.host}/v2/${repository}/${kind}/${digest}`, { headers: { accept } });
    assert.equal(response.status, 200, `GET ${kind}/${digest}`);
    return (await response.json()) as Json;
  }

  test('a push with --provenance=mode=max --sbom=true carries BuildKit-style attestation manifests that skopeo reads', async () => {
    const target = `${registry.host}/team/app:1`;
    const result = await tsbuild(['-t', target, '--push', '--provenance=mode=max', '--sbom=true', '--build-arg', 'GREETING=hello', '--progress', 'plain', ctx], env);
    assert.equal(result.code, 0, result.stderr);

    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${target}`]);
    const index = JSON.parse(stdout) as Json;
    assertValidImageSpec('index', index);
    assert.equal(index.manifests.length, 2);
    const [image, attestation] = index.manifests;
    assert.equal(formatPlatform(image.platform), formatPlatform(hostPlatform()));
    assert.deepEqual(attestation.platform, { architecture: 'unknown', os: 'unknown' });
    assert.deepEqual(attestation.annotations, { 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });
    assert.equal(result.stdout.trim(), `sha256:${(await import('node:crypto')).createHash('sha256').update(stdout).digest('hex')}`, 'the printed digest is the pushed index');

    const { stdout: rawAttestation } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/team/app@${attestation.digest}`]);
    const manifest = JSON.parse(rawAttestation) as Json;
    assertValidImageSpec('manifest', manifest);
    assert.deepEqual(
      manifest.layers.map((l: Json) => [l.mediaType, l.annotations['in-toto.io/predicate-type']]),
      [
        ['application/vnd.in-toto+json', 'https://slsa.dev/provenance/v0.2'],
        ['application/vnd.in-toto+json', 'https://spdx.dev/Document'],
      ],
    );
    const config = await registryJson('team/app', 'blobs', manifest.config.digest);
    assertValidImageSpec('config', config);
    const [provenance, sbom] = await Promise.all(manifest.layers.map((l: Json) => registryJson('team/app', 'blobs', l.digest)));

    for (const statement of [provenance, sbom]) {
      assertInTotoStatement(statement);
      assert.deepEqual(statement.subject, [{ name: `pkg:docker/${registry.host}/team/app@1?platform=${encodeURIComponent(formatPlatform(hostPlatform()))}`, digest: { sha256: image.digest.slice(7) } }]);
    }
    assertSlsaProvenance(provenance.predicate);
    assert.equal(provenance.predicate.invocation.configSource.entryPoint, 'Dockerfile');
    assert.equal(provenance.predicate.invocation.parameters.args['build-arg:GREETING'], 'hello');
    assert.equal(provenance.predicate.buildConfig.dockerfile.data, await readFile(path.join(ctx, 'Dockerfile'), 'utf8'));
    assert.ok(provenance.predicate.buildConfig.steps.some((s: Json) => s.command === 'COPY app /app' && s.location.line === 3), JSON.stringify(provenance.predicate.buildConfig.steps));
    assert.deepEqual(provenance.predicate.materials, [
      { uri: `pkg:docker/${registry.host}/library/debian@bookworm?platform=${encodeURIComponent(formatPlatform(hostPlatform()))}`, digest: { sha256: baseDigest.slice(7) } },
    ]);
    assert.equal(provenance.predicate.metadata.buildStartedOn, '2023-11-14T22:13:20Z');
    assert.equal(provenance.predicate.metadata.reproducible, true, 'COPY from the context and a pinned base, with SOURCE_DATE_EPOCH');

    assertSpdxDocument(sbom.predicate);
    assert.equal(sbom.predicate.creationInfo.created, '2023-11-14T22:13:20Z');
    const listed = (sbom.predicate.packages as Json[]).filter((p) => p.externalRefs?.[0]?.referenceLocator.startsWith('pkg:deb/')).map((p) => `${p.name} ${p.versionInfo}`).sort();
    assert.ok(dpkgPackages.length > 50, `dpkg-query lists ${dpkgPackages.length} packages`);
    assert.deepEqual(listed, dpkgPackages);
    const npm = (sbom.predicate.packages as Json[]).filter((p) => p.externalRefs?.[0]?.referenceLocator.startsWith('pkg:npm/'));
    assert.deepEqual(npm.map((p) => `${p.name}@${p.versionInfo} ${p.licenseDeclared}`).sort(), ['@scope/tool@2.1.0 MIT', 'left-pad@1.3.0 WTFPL', 'not-installed@4.0.0 ISC', 'old-style@0.1.0 MIT OR Apache-2.0']);
  });

  test('an OCI layout gets the same index; with SOURCE_DATE_EPOCH a rebuild gives the same digest, and the layout validates', async () => {
    const args = ['-t', 'app:1', '--provenance=mode=min', '--sbom=true'];
    const first = await tsbuild([...args, '-o', `type=oci,dest=${path.join(work, 'layout-a')}`, ctx], env);
    assert.equal(first.code, 0, first.stderr);
    const second = await tsbuild([...args, '--no-cache', '-o', `type=oci,dest=${path.join(work, 'layout-b')}`, ctx], env);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(first.stdout.trim(), second.stdout.trim());
    await validateLayout(path.join(work, 'layout-a'));
    const layout = await OciLayout.open(path.join(work, 'layout-a'), { create: false });
    const index = await layout.readJson<Json>((await layout.readIndex()).manifests[0]!.digest as `sha256:${string}`);
    assert.equal(index.manifests[1].annotations['vnd.docker.reference.type'], 'attestation-manifest');
    const attestation = await layout.readJson<Json>(index.manifests[1].digest);
    const provenance = await layout.readJson<Json>(attestation.layers[0].digest);
    assert.equal(provenance.predicate.buildConfig, undefined, 'mode=min has no build steps');
    assert.equal(provenance.predicate.invocation.parameters.args['build-arg:GREETING'], undefined);
  });

  test('a multi-platform build gets one attestation manifest per image, listed after all the images', async () => {
    const scratch = path.join(work, 'scratch-context');
    await cp(ctx, scratch, { recursive: true });
    await writeFile(path.join(scratch, 'Dockerfile'), 'FROM scratch\nCOPY app /app\n');
    const dest = path.join(work, 'multi');
    const result = await tsbuild(['--platform', 'linux/amd64,linux/arm64', '--sbom=true', '--provenance=true', '-o', `type=oci,dest=${dest}`, scratch], env);
    assert.equal(result.code, 0, result.stderr);
    await validateLayout(dest);
    const layout = await OciLayout.open(dest, { create: false });
    const index = await layout.readJson<Json>((await layout.readIndex()).manifests[0]!.digest as `sha256:${string}`);
    const platforms = index.manifests.map((m: Json) => formatPlatform(m.platform));
    assert.deepEqual(platforms, ['linux/amd64', 'linux/arm64', 'unknown/unknown', 'unknown/unknown']);
    for (const [i, image] of index.manifests.slice(0, 2).entries()) {
      const attestation = index.manifests[2 + i];
      assert.equal(attestation.annotations['vnd.docker.reference.digest'], image.digest);
      const manifest = await layout.readJson<Json>(attestation.digest);
      for (const layer of manifest.layers) {
        const statement = await layout.readJson<Json>(layer.digest);
        assert.deepEqual(statement.subject, [{ name: '_', digest: { sha256: image.digest.slice(7) } }]);
        if (statement.predicateType === 'https://spdx.dev/Document') {
          assertSpdxDocument(statement.predicate);
          assert.equal(statement.predicate.packages.filter((p: Json) => p.externalRefs?.[0]?.referenceLocator.startsWith('pkg:npm/')).length, 4);
        } else {
          assertSlsaProvenance(statement.predicate);
        }
      }
    }
  });

  test('--provenance=false --sbom=false leave a plain manifest; type=local gets a note and no attestation', async () => {
    const scratch = path.join(work, 'plain-context');
    await cp(ctx, scratch, { recursive: true });
    await writeFile(path.join(scratch, 'Dockerfile'), 'FROM scratch\nCOPY app /app\n');
    const dest = path.join(work, 'plain');
    const off = await tsbuild(['--provenance=false', '--sbom=false', '-o', `type=oci,dest=${dest}`, scratch], env);
    assert.equal(off.code, 0, off.stderr);
    const [entry] = (await (await OciLayout.open(dest, { create: false }).then((l) => l.readIndex())).manifests);
    assert.equal(entry!.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    const files = path.join(work, 'files');
    const local = await tsbuild(['--sbom=true', '--progress', 'plain', '-o', `type=local,dest=${files}`, scratch], env);
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stderr, /type=local writes the image's files, not an image: no attestation is attached to it/);
    await stat(path.join(files, 'app', 'package.json'));
  });

  test('type=docker cannot hold attestations: refused before the build, in one line, nothing written', async () => {
    const dest = path.join(work, 'image.tar');
    const result = await tsbuild(['--sbom=true', '-o', `type=docker,dest=${dest}`, ctx], env);
    assert.equal(result.code, 2, 'a usage error');
    assert.match(result.stderr, /^error: --provenance and --sbom attach attestations in an image index, which type=docker .* use --output type=oci or type=registry/);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    await assert.rejects(stat(dest));
  });

  test('bad --provenance and --sbom values are usage errors naming the value', async () => {
    for (const [flag, message] of [
      ['--provenance=mode=full', /invalid --provenance "mode=full": mode must be min or max/],
      ['--sbom=generator=docker/scout-sbom-indexer:1', /runs no scanner image; use --sbom=true/],
    ] as const) {
      const result = await tsbuild([flag, '-o', `type=oci,dest=${path.join(work, 'never')}`, ctx], env);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
    }
  });
});
