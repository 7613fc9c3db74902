import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseProvenanceFlag, parseSbomFlag } from '../../../builder/attest/attest-options.js';
import { slsaProvenance, type BuildInvocation } from '../../../builder/attest/provenance.js';
import { imageSubjects, statement } from '../../../builder/attest/statement.js';
import { planBuild } from '../../../builder/build.js';
import type { PlatformPlan } from '../../../builder/model/plan.js';
import { OciLayout } from '../../../layers/oci-layout.js';
import { TsbuildError } from '../../../layers/errors.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { assertInTotoStatement, assertSlsaProvenance } from './attestation-schemas.js';

describe('SLSA provenance', () => {
  let work: string;
  let plan: PlatformPlan;
  let baseDigest: string;
  let invocation: BuildInvocation;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-provenance-'));
    const base = path.join(work, 'base');
    await writeBusyboxImage(base, 'v1');
    baseDigest = (await (await OciLayout.open(base, { create: false })).readIndex()).manifests[0]!.digest;
    const context = path.join(work, 'context');
    await mkdir(context);
    const dockerfile = 'FROM base AS build\nARG GREETING\nRUN echo "$GREETING" > /hello\n\nFROM scratch\nCOPY --from=build /hello /hello\nLABEL stage=final\n';
    await writeFile(path.join(context, 'Dockerfile'), dockerfile);
    const built = await planBuild({ source: { context, buildArgs: new Map([['GREETING', 'hi']]), buildContexts: [`base=oci-layout://${base}:v1`] } });
    plan = built.platforms[0]!;
    invocation = {
      dockerfilePath: 'Dockerfile',
      dockerfile: await readFile(path.join(context, 'Dockerfile')),
      buildArgs: new Map([['GREETING', 'hi']]),
      labels: new Map([['team', 'blue']]),
      secretIds: ['token'],
      sshIds: ['default'],
      builderPlatform: { os: 'linux', architecture: 'amd64' },
      time: '2023-11-14T22:13:20.000Z',
      fixedTime: true,
    };
  });
  after(() => rm(work, { recursive: true, force: true }));

  test('mode=min: the Dockerfile by digest, frontend args without build args or labels, base images as materials', () => {
    const predicate = slsaProvenance(invocation, plan, { mode: 'min', builderId: 'urn:example:builder' }) as Record<string, any>;
    assertSlsaProvenance(predicate);
    assert.equal(predicate.builder.id, 'urn:example:builder');
    assert.deepEqual(predicate.invocation.configSource.entryPoint, 'Dockerfile');
    assert.match(predicate.invocation.configSource.digest.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(predicate.invocation.parameters.args, {});
    assert.equal(predicate.invocation.parameters.secrets, undefined);
    assert.equal(predicate.buildConfig, undefined);
    assert.deepEqual(predicate.metadata.completeness, { parameters: false, environment: true, materials: false });
    assert.equal(predicate.metadata.reproducible, false, 'a RUN step may reach the network: no claim of reproducibility');
    assert.equal(predicate.metadata.buildStartedOn, '2023-11-14T22:13:20Z');
    assert.deepEqual(predicate.materials, [{ uri: 'oci-layout:base:v1', digest: { sha256: baseDigest.slice('sha256:'.length) } }]);
  });

  test('mode=max: build args, labels, secret and ssh ids, the Dockerfile and every planned step', async () => {
    const predicate = slsaProvenance(invocation, plan, { mode: 'max', builderId: 'urn:example:builder' }) as Record<string, any>;
    assertSlsaProvenance(predicate);
    assert.deepEqual(predicate.invocation.parameters.args, { 'build-arg:GREETING': 'hi', 'label:team': 'blue' });
    assert.deepEqual(predicate.invocation.parameters.secrets, [{ id: 'token' }]);
    assert.deepEqual(predicate.invocation.parameters.ssh, [{ id: 'default' }]);
    assert.equal(predicate.buildConfig.dockerfile.data, invocation.dockerfile.toString('utf8'));
    const steps = predicate.buildConfig.steps as Array<{ stage: string; command: string; location: { line: number } }>;
    assert.ok(steps.some((s) => s.stage === 'build' && s.command.startsWith('RUN ') && s.location.line === 3), JSON.stringify(steps));
    assert.ok(steps.some((s) => s.command.startsWith('COPY --from=build') && s.location.line === 6), JSON.stringify(steps));
    assert.equal(predicate.metadata.completeness.parameters, true);
  });

  test('the statement names the image manifest as subject, by purl for each name', () => {
    const digest = `sha256:${'ab'.repeat(32)}` as const;
    const platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
    const subjects = imageSubjects(['registry.example:5000/team/app:1', 'docker.io/library/app:latest'], digest, platform);
    assert.deepEqual(subjects.map((s) => s.name), ['pkg:docker/registry.example:5000/team/app@1?platform=linux%2Farm64%2Fv8', 'pkg:docker/app@latest?platform=linux%2Farm64%2Fv8']);
    assert.deepEqual(imageSubjects([], digest, platform), [{ name: '_', digest: { sha256: 'ab'.repeat(32) } }]);
    const whole = statement(subjects, 'https://slsa.dev/provenance/v0.2', slsaProvenance(invocation, plan, { mode: 'min', builderId: 'urn:example:builder' }));
    assertInTotoStatement(JSON.parse(JSON.stringify(whole)));
  });

  test('--provenance and --sbom take buildx spellings and refuse the rest in one line', () => {
    assert.deepEqual(parseProvenanceFlag('true'), { mode: 'min', builderId: 'urn:tsbuild:builder:local' });
    assert.deepEqual(parseProvenanceFlag('mode=max'), { mode: 'max', builderId: 'urn:tsbuild:builder:local' });
    assert.deepEqual(parseProvenanceFlag('mode=max,builder-id=https://ci.example/run/7'), { mode: 'max', builderId: 'https://ci.example/run/7' });
    assert.equal(parseProvenanceFlag('false'), undefined);
    assert.equal(parseSbomFlag('true'), true);
    assert.equal(parseSbomFlag('false'), false);
    const refused: Array<[() => unknown, RegExp]> = [
      [() => parseProvenanceFlag('mode=full'), /^invalid --provenance "mode=full": mode must be min or max/],
      [() => parseProvenanceFlag('mode=max,version=v1'), /only SLSA provenance version v0\.2/],
      [() => parseProvenanceFlag('mode=max,colour=red'), /unknown key "colour"/],
      [() => parseSbomFlag('generator=docker/scout-sbom-indexer:1'), /runs no scanner image; use --sbom=true/],
      [() => parseSbomFlag('yes'), /^invalid --sbom "yes"/],
      [() => parseSbomFlag('.'), /write --sbom=true: a bare --sbom takes the next argument as its value/],
    ];
    for (const [call, message] of refused) {
      assert.throws(call, (err: unknown) => err instanceof TsbuildError && message.test(err.message) && !err.message.includes('\n'));
    }
  });
});
