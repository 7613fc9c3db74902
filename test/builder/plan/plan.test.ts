import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { planBuild } from '../../../builder/build.js';
import { parseDockerfile } from '../../../builder/frontend/parse.js';
import type { NamedContext } from '../../../builder/plan/build-contexts.js';
import type { CopyStep, PlannedStage, PlatformPlan, RunStep } from '../../../builder/model/plan.js';
import type { ResolvedImage } from '../../../builder/model/sources.js';
import { createPlan, type PlanOptions } from '../../../builder/plan/plan.js';
import { hostPlatform } from '../../../builder/plan/platform.js';
import { SourceError, TsbuildError } from '../../../layers/errors.js';
import { OciLayout } from '../../../layers/oci-layout.js';
import { emptyImage } from '../../../layers/mutate.js';
import { MediaType, type ContainerConfig, type ImageConfig, type Platform } from '../../../layers/types.js';

const amd64: Platform = { os: 'linux', architecture: 'amd64' };
const arm64: Platform = { os: 'linux', architecture: 'arm64' };
const armv7: Platform = { os: 'linux', architecture: 'arm', variant: 'v7' };
const defaultPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface PlanOverrides {
  buildArgs?: Record<string, string>;
  target?: string;
  buildPlatform?: Platform;
  platforms?: Platform[];
  /** Image build contexts: name → the config the fake resolver returns. */
  images?: Record<string, Partial<ImageConfig>>;
}

/** Contexts named in `images` resolve to fake images; any other resolution is a test failure. */
function planOptions(over: PlanOverrides): PlanOptions & { resolved: string[] } {
  const resolved: string[] = [];
  const buildContexts = new Map<string, NamedContext>();
  for (const name of Object.keys(over.images ?? {})) {
    buildContexts.set(name, { kind: 'oci-layout', name, layoutDir: `/layouts/${name}`, reference: 'latest' });
  }
  return {
    resolved,
    buildArgs: new Map(Object.entries(over.buildArgs ?? {})),
    ...(over.target !== undefined ? { target: over.target } : {}),
    buildPlatform: over.buildPlatform ?? amd64,
    platforms: over.platforms ?? [amd64],
    buildContexts,
    resolveImage: async (context, platform): Promise<ResolvedImage> => {
      const config = over.images?.[context.name];
      if (!config) throw new Error(`resolveImage must not be called (asked for ${context.name})`);
      resolved.push(context.name);
      return {
        image: emptyImage(),
        reference: context.reference,
        manifestDigest: `sha256:${'0'.repeat(64)}`,
        config: { ...platform, rootfs: { type: 'layers', diff_ids: [] }, ...config },
        layers: [],
      };
    },
    resolveRegistryImage: async (reference) => {
      throw new TsbuildError('UNREACHABLE', `no registry in plan tests (asked for ${reference})`);
    },
  };
}

async function plan(text: string, over: PlanOverrides = {}) {
  return createPlan(parseDockerfile(text, 'Dockerfile'), 'Dockerfile', planOptions(over));
}

async function platformPlan(text: string, over: PlanOverrides = {}): Promise<PlatformPlan> {
  const result = await plan(text, over);
  assert.equal(result.platforms.length, 1);
  return result.platforms[0]!;
}

function targetOf(p: PlatformPlan): PlannedStage {
  const stage = p.stages.find((s) => s.index === p.targetIndex);
  assert.ok(stage, `target stage ${p.targetIndex} is not in the plan`);
  return stage;
}

/** The target stage of a single-platform plan. */
async function planTarget(text: string, over: PlanOverrides = {}): Promise<PlannedStage> {
  return targetOf(await platformPlan(text, over));
}

async function planConfig(text: string, over: PlanOverrides = {}): Promise<ContainerConfig> {
  return (await planTarget(text, over)).config;
}

function runs(stage: PlannedStage): RunStep[] {
  return stage.steps.filter((s): s is RunStep => s.kind === 'run');
}

function copies(stage: PlannedStage): CopyStep[] {
  return stage.steps.filter((s): s is CopyStep => s.kind === 'copy');
}

/** The `KEY=value` entries of an env list as a map; fails on a repeated key. */
function envMap(env: readonly string[] | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const pair of env ?? []) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    assert.ok(!map.has(key), `${key} appears twice in ${JSON.stringify(env)}`);
    map.set(key, pair.slice(eq + 1));
  }
  return map;
}

/** Planning fails with a SourceError at `line` whose message (after `Dockerfile:line: `) matches. */
async function assertFailsAt(text: string, line: number, message: RegExp | string, over: PlanOverrides = {}): Promise<void> {
  await assert.rejects(plan(text, over), (err: unknown) => {
    assert.ok(err instanceof SourceError, `expected a SourceError, got ${String(err)}`);
    assert.equal(err.file, 'Dockerfile');
    assert.equal(err.line, line);
    assert.ok(err.message.startsWith(`Dockerfile:${line}: `), err.message);
    const rest = err.message.slice(`Dockerfile:${line}: `.length);
    if (typeof message === 'string') assert.equal(rest, message);
    else assert.match(rest, message);
    return true;
  });
}

describe('global ARGs', () => {
  it('are expanded in FROM lines', async () => {
    const p = await platformPlan('ARG BASE=builder\nFROM scratch AS builder\nFROM ${BASE}\n');
    assert.deepEqual(targetOf(p).base, { kind: 'stage', index: 0 });
  });

  it('may use earlier global ARGs in their defaults', async () => {
    const text = 'ARG a1=box\nARG a2="$a1-foo"\nFROM scratch\nARG a2\nARG a3="bar-$a2"\nENV OUT=$a3\n';
    assert.equal(envMap((await planConfig(text)).Env).get('OUT'), 'bar-box-foo');
  });

  it('are not visible inside a stage until re-declared with ARG NAME', async () => {
    const text = 'ARG V=global\nFROM scratch\nENV BEFORE="[$V]"\nARG V\nENV AFTER="[$V]"\n';
    const env = envMap((await planConfig(text)).Env);
    assert.equal(env.get('BEFORE'), '[]');
    assert.equal(env.get('AFTER'), '[global]');
  });

  it('inherit the --build-arg override when re-declared', async () => {
    const text = 'ARG V=global\nFROM scratch AS x\nFROM scratch\nARG V\nENV AFTER=$V\n';
    const stage = await planTarget(text, { buildArgs: { V: 'cli' } });
    assert.equal(envMap(stage.config.Env).get('AFTER'), 'cli');
  });

  it('take the --build-arg value in FROM', async () => {
    const p = await platformPlan('ARG BASE=a\nFROM scratch AS a\nFROM scratch AS b\nFROM $BASE\n', { buildArgs: { BASE: 'b' } });
    assert.deepEqual(targetOf(p).base, { kind: 'stage', index: 1 });
    assert.deepEqual(p.stages.map((s) => s.name ?? s.index), ['b', 2]);
  });

  it('are not defined by a --build-arg alone', async () => {
    // A --build-arg without a global ARG declaring it is not visible to FROM.
    await assertFailsAt('FROM $BASE\n', 1, 'base name ($BASE) should not be blank', { buildArgs: { BASE: 'scratch' } });
  });

  it('keep a default-less global ARG unset unless given', async () => {
    const text = 'ARG V\nFROM scratch\nARG V\nENV OUT="[${V-unset}]"\n';
    assert.equal(envMap((await planConfig(text)).Env).get('OUT'), '[unset]');
    assert.equal(envMap((await planConfig(text, { buildArgs: { V: 'x' } })).Env).get('OUT'), '[x]');
  });
});

describe('stage ARGs', () => {
  it('are overridden by --build-arg', async () => {
    const text = 'FROM scratch\nARG V=default\nENV OUT=$V\n';
    assert.equal(envMap((await planConfig(text)).Env).get('OUT'), 'default');
    assert.equal(envMap((await planConfig(text, { buildArgs: { V: 'cli' } })).Env).get('OUT'), 'cli');
  });

  it('come into effect on the line that declares them', async () => {
    const text = 'FROM scratch\nENV U1=${username:-some_user}\nARG username\nENV U2=${username:-some_user}\n';
    const env = envMap((await planConfig(text, { buildArgs: { username: 'what_user' } })).Env);
    assert.equal(env.get('U1'), 'some_user');
    assert.equal(env.get('U2'), 'what_user');
  });

  it('may use earlier ARGs and ENV in their defaults, also on the same line', async () => {
    const text = 'FROM scratch\nENV E=env\nARG A=a\nARG B=${A}-${E} C=$B!\nENV OUT=$C\n';
    assert.equal(envMap((await planConfig(text)).Env).get('OUT'), 'a-env!');
  });

  it('a --build-arg replaces the default without expanding it', async () => {
    const text = 'FROM scratch\nARG A=a\nARG B=$A\nENV OUT=$B\n';
    assert.equal(envMap((await planConfig(text, { buildArgs: { B: '$A' } })).Env).get('OUT'), '$A');
  });

  it('are passed to RUN but not put in the image config', async () => {
    const stage = await planTarget('FROM scratch\nARG X=1 Y\nRUN true\n');
    assert.deepEqual(stage.config.Env, [defaultPath]);
    const env = envMap(runs(stage)[0]!.env);
    assert.equal(env.get('X'), '1');
    assert.equal(env.get('PATH'), defaultPath.slice('PATH='.length));
    assert.ok(!env.has('Y'), 'an ARG without a value is not in the RUN environment');
  });

  it('only reach the RUN steps after the ARG', async () => {
    const stage = await planTarget('FROM scratch\nRUN one\nARG X=1\nRUN two\n');
    const [one, two] = runs(stage);
    assert.ok(!envMap(one!.env).has('X'));
    assert.equal(envMap(two!.env).get('X'), '1');
  });

  it('lose to an ENV of the same name set after them (reference example)', async () => {
    const text = 'FROM scratch\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n';
    const stage = await planTarget(text, { buildArgs: { CONT_IMG_VER: 'v2.0.1' } });
    assert.equal(envMap(stage.config.Env).get('CONT_IMG_VER'), 'v1.0.0');
    assert.equal(envMap(runs(stage)[0]!.env).get('CONT_IMG_VER'), 'v1.0.0');
  });

  it('can provide an ENV default (reference example)', async () => {
    const text = 'FROM scratch\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nRUN echo $CONT_IMG_VER\n';
    assert.equal(envMap((await planConfig(text)).Env).get('CONT_IMG_VER'), 'v1.0.0');
    assert.equal(envMap((await planConfig(text, { buildArgs: { CONT_IMG_VER: 'v2.0.1' } })).Env).get('CONT_IMG_VER'), 'v2.0.1');
  });

  it('declared after an inherited ENV of the same name, apply to RUN and expansion but not to the config', async () => {
    const text = 'FROM base\nARG HELLO=arg\nENV SEEN=$HELLO\nRUN echo\n';
    const stage = await planTarget(text, { images: { base: { config: { Env: ['HELLO=World'] } } } });
    const env = envMap(stage.config.Env);
    assert.equal(env.get('HELLO'), 'World');
    assert.equal(env.get('SEEN'), 'arg');
    assert.equal(envMap(runs(stage)[0]!.env).get('HELLO'), 'arg');
  });

  it('are inherited by stages based on the declaring stage, not by unrelated stages', async () => {
    const text = [
      'FROM scratch AS base',
      'ARG V=from-base',
      'FROM base AS child',
      'ENV SEEN="[$V]"',
      'RUN echo',
      'FROM scratch AS other',
      'ENV SEEN="[$V]"',
      'RUN echo',
      'FROM scratch',
      'COPY --from=child /a /a',
      'COPY --from=other /b /b',
      '',
    ].join('\n');
    const p = await platformPlan(text);
    const child = p.stages.find((s) => s.name === 'child')!;
    const other = p.stages.find((s) => s.name === 'other')!;
    assert.equal(envMap(child.config.Env).get('SEEN'), '[from-base]');
    assert.equal(envMap(runs(child)[0]!.env).get('V'), 'from-base');
    assert.ok(!envMap(child.config.Env).has('V'));
    assert.equal(envMap(other.config.Env).get('SEEN'), '[]');
    assert.ok(!envMap(runs(other)[0]!.env).has('V'));
  });

  it('are recorded in the ARG step with their values', async () => {
    const stage = await planTarget('FROM scratch\nARG A=1 B\n');
    assert.equal(stage.steps[0]!.createdBy, 'ARG A=1 B');
  });
});

describe('automatic platform ARGs', () => {
  const all = 'BUILDPLATFORM BUILDOS BUILDARCH TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT';

  it('are usable in FROM without being declared', async () => {
    const text = 'FROM scratch AS build-amd64\nFROM scratch AS build-arm64\nFROM build-$TARGETARCH\n';
    const p = await platformPlan(text, { platforms: [arm64] });
    assert.deepEqual(targetOf(p).base, { kind: 'stage', index: 1 });
  });

  it('are not visible in a stage until declared, then have the platform values', async () => {
    const text = `FROM scratch\nENV BEFORE="[$TARGETARCH]"\nARG ${all}\nRUN echo\n`;
    const stage = await planTarget(text, { buildPlatform: amd64, platforms: [armv7] });
    assert.equal(envMap(stage.config.Env).get('BEFORE'), '[]');
    const env = envMap(runs(stage)[0]!.env);
    assert.deepEqual(Object.fromEntries([...env].filter(([k]) => k !== 'PATH' && k !== 'BEFORE')), {
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDARCH: 'amd64',
      TARGETPLATFORM: 'linux/arm/v7',
      TARGETOS: 'linux',
      TARGETARCH: 'arm',
      TARGETVARIANT: 'v7',
    });
  });

  it('FROM --platform=$BUILDPLATFORM runs the stage on the build platform but keeps TARGETARCH', async () => {
    const text = 'FROM --platform=$BUILDPLATFORM scratch AS build\nARG TARGETARCH\nENV GOARCH=$TARGETARCH\nFROM scratch\nCOPY --from=build /out /out\n';
    const p = await platformPlan(text, { buildPlatform: amd64, platforms: [arm64] });
    const build = p.stages.find((s) => s.name === 'build')!;
    assert.deepEqual(build.platform, amd64);
    assert.equal(envMap(build.config.Env).get('GOARCH'), 'arm64');
    assert.deepEqual(targetOf(p).platform, arm64);
  });

  it('a stage based on another stage keeps its platform', async () => {
    const text = 'FROM --platform=linux/arm64 scratch AS a\nFROM a\n';
    const p = await platformPlan(text, { platforms: [amd64] });
    assert.deepEqual(targetOf(p).platform, arm64);
  });

  it('make one PlatformPlan per platform with its own TARGETARCH', async () => {
    const result = await plan('FROM scratch\nARG TARGETARCH TARGETPLATFORM\nENV ARCH=$TARGETARCH PLAT=$TARGETPLATFORM\n', {
      platforms: [amd64, arm64, armv7],
    });
    assert.deepEqual(
      result.platforms.map((p) => p.platform),
      [amd64, arm64, armv7],
    );
    assert.deepEqual(
      result.platforms.map((p) => [envMap(targetOf(p).config.Env).get('ARCH'), envMap(targetOf(p).config.Env).get('PLAT')]),
      [
        ['amd64', 'linux/amd64'],
        ['arm64', 'linux/arm64'],
        ['arm', 'linux/arm/v7'],
      ],
    );
    assert.deepEqual(
      result.platforms.map((p) => targetOf(p).platform),
      [amd64, arm64, armv7],
    );
  });

  it('keep their value when re-declared globally without a default', async () => {
    const text = 'ARG TARGETARCH\nFROM scratch\nARG TARGETARCH\nENV ARCH=$TARGETARCH\n';
    assert.equal(envMap((await planConfig(text, { platforms: [arm64] })).Env).get('ARCH'), 'arm64');
  });

  it('resolve image bases for the stage platform', async () => {
    const seen: Platform[] = [];
    const options = planOptions({ images: { img: {} }, buildPlatform: amd64, platforms: [arm64] });
    const resolveImage = options.resolveImage;
    const parsed = parseDockerfile('FROM --platform=$BUILDPLATFORM img AS build\nFROM img\n', 'Dockerfile');
    await createPlan(parsed, 'Dockerfile', {
      ...options,
      target: 'build',
      resolveImage: (context, platform) => {
        seen.push(platform);
        return resolveImage(context, platform);
      },
    });
    assert.deepEqual(seen, [amd64]);
  });

  it('reject an invalid FROM --platform at its line', async () => {
    await assertFailsAt('FROM scratch\nFROM --platform=linux scratch\n', 2, /invalid platform "linux"/);
  });
});

describe('ENV', () => {
  it('expands a whole line with the environment from before the line', async () => {
    const text = 'FROM scratch\nENV a=0\nENV a=1 b=$a\nENV c=$a\n';
    const env = envMap((await planConfig(text)).Env);
    assert.equal(env.get('a'), '1');
    assert.equal(env.get('b'), '0');
    assert.equal(env.get('c'), '1');
  });

  it('sees nothing for a variable first set on the same line', async () => {
    const env = envMap((await planConfig('FROM scratch\nENV x=1 y="[$x]"\n')).Env);
    assert.equal(env.get('y'), '[]');
  });

  it('keeps the Env order and replaces values in place', async () => {
    const config = await planConfig('FROM scratch\nENV A=1 B=2\nENV A=3\nENV PATH=/bin\n');
    assert.deepEqual(config.Env, ['PATH=/bin', 'A=3', 'B=2']);
  });

  it('accepts the legacy form and quoted values', async () => {
    const env = envMap((await planConfig('FROM scratch\nENV GREETING hello world\nENV Q="a b" R=\'$x\'\n')).Env);
    assert.equal(env.get('GREETING'), 'hello world');
    assert.equal(env.get('Q'), 'a b');
    assert.equal(env.get('R'), '$x');
  });

  it('inherits the base stage Env', async () => {
    const config = await planConfig('FROM scratch AS a\nENV A=1\nFROM a\nENV B=$A$A\n');
    assert.deepEqual(config.Env, [defaultPath, 'A=1', 'B=11']);
  });
});

describe('image config instructions', () => {
  it('LABEL expands words and merges with inherited labels', async () => {
    const text = 'FROM scratch AS a\nLABEL keep=1 over=old\nFROM a\nENV V=x\nLABEL over=new "with space"="a b" exp=$V\n';
    assert.deepEqual((await planConfig(text)).Labels, { keep: '1', over: 'new', 'with space': 'a b', exp: 'x' });
  });

  it('EXPOSE records ports, ranges and protocols', async () => {
    const config = await planConfig('FROM scratch\nENV P=9000\nEXPOSE 80 8000-8002/tcp 53/udp $P/SCTP\nEXPOSE 80/tcp\n');
    assert.deepEqual(Object.keys(config.ExposedPorts ?? {}).sort(), ['53/udp', '80/tcp', '8000/tcp', '8001/tcp', '8002/tcp', '9000/sctp']);
  });

  it('EXPOSE rejects a bad port at its line', async () => {
    await assertFailsAt('FROM scratch\n\nEXPOSE 80/foo\n', 3, /invalid proto/);
    await assertFailsAt('FROM scratch\nEXPOSE 90-80\n', 2, /invalid port range/);
    await assertFailsAt('FROM scratch\nEXPOSE http\n', 2, /invalid port specification/);
  });

  it('VOLUME takes JSON and plain forms', async () => {
    const config = await planConfig('FROM scratch\nENV D=/data\nVOLUME ["/a", "$D"]\nVOLUME /b /c\n');
    assert.deepEqual(Object.keys(config.Volumes ?? {}).sort(), ['/a', '/b', '/c', '/data']);
  });

  it('USER expands its argument and is applied to later steps', async () => {
    const stage = await planTarget('FROM scratch\nARG U=app\nUSER $U:$U\nRUN id\nWORKDIR /w\n');
    assert.equal(stage.config.User, 'app:app');
    assert.equal(runs(stage)[0]!.user, 'app:app');
    const workdir = stage.steps.find((s) => s.kind === 'workdir');
    assert.equal(workdir?.kind === 'workdir' ? workdir.user : undefined, 'app:app');
  });

  it('WORKDIR is taken relative to the previous one and applies to COPY and RUN', async () => {
    const stage = await planTarget('FROM scratch\nENV B=b\nWORKDIR /a\nWORKDIR $B\nWORKDIR ../c/./d\nCOPY x y/\nCOPY x .\nRUN pwd\n');
    assert.equal(stage.config.WorkingDir, '/a/c/d');
    assert.deepEqual(
      stage.steps.filter((s) => s.kind === 'workdir').map((s) => s.createdBy),
      ['WORKDIR /a', 'WORKDIR /a/b', 'WORKDIR /a/c/d'],
    );
    assert.deepEqual(copies(stage).map((c) => c.dest), ['/a/c/d/y/', '/a/c/d/']);
    assert.equal(runs(stage)[0]!.workdir, '/a/c/d');
  });

  it('WORKDIR continues from the base stage', async () => {
    const config = await planConfig('FROM scratch AS a\nWORKDIR /srv\nFROM a\nWORKDIR app\n');
    assert.equal(config.WorkingDir, '/srv/app');
  });

  it('records WorkingDir as BuildKit does: / on scratch, an absolute path as written, a relative one cleaned', async () => {
    assert.equal((await planConfig('FROM scratch\nENV A=1\n')).WorkingDir, '/');
    assert.equal((await planConfig('FROM base\n', { images: { base: { config: { Env: ['PATH=/bin'] } } } })).WorkingDir, undefined);
    const stage = await planTarget('FROM scratch\nWORKDIR /app/\nWORKDIR /x/../y/.\nWORKDIR sub/\nWORKDIR /\nRUN pwd\n');
    assert.equal(stage.config.WorkingDir, '/');
    // Every WORKDIR but `/` is a step with a layer; `/` only changes the config.
    assert.deepEqual(
      stage.steps.map((s) => [s.kind, s.createdBy]),
      [['workdir', 'WORKDIR /app/'], ['workdir', 'WORKDIR /x/../y/.'], ['workdir', 'WORKDIR /y/sub'], ['metadata', 'WORKDIR /'], ['run', 'RUN /bin/sh -c pwd']],
    );
    assert.deepEqual(stage.steps.flatMap((s) => (s.kind === 'workdir' ? [s.path] : [])), ['/app', '/y', '/y/sub']);
    assert.equal((await planConfig('FROM scratch\nWORKDIR /app/\n')).WorkingDir, '/app/');
    assert.equal(runs(await planTarget('FROM scratch\nWORKDIR /a//b/./\nRUN pwd\n'))[0]!.workdir, '/a/b');
  });

  it('sets ArgsEscaped for CMD in either form, as BuildKit does, and not for ENTRYPOINT alone', async () => {
    assert.equal((await planConfig('FROM scratch\nCMD ["a"]\n')).ArgsEscaped, true);
    assert.equal((await planConfig('FROM scratch\nCMD a\n')).ArgsEscaped, true);
    assert.equal((await planConfig('FROM scratch\nENTRYPOINT a\n')).ArgsEscaped, undefined);
  });

  it('expands variables in ARG and ENV names', async () => {
    const stage = await planTarget('FROM scratch\nARG name=foo\nARG ${name}=x\nENV k=K\nENV ${k}=v $k$k=w\nENV K2=$foo\nRUN env\n', { buildArgs: { foo: 'from-cli' } });
    assert.deepEqual(stage.config.Env, [defaultPath, 'k=K', 'K=v', 'KK=w', 'K2=from-cli']);
    assert.equal(envMap(runs(stage)[0]!.env).get('foo'), 'from-cli');
    assert.deepEqual(stage.steps.map((s) => s.createdBy).slice(0, 2), ['ARG name=foo', 'ARG foo=from-cli']);
    await assertFailsAt('FROM scratch\nARG ${nothing}=x\n', 2, /ARG names can not be blank/);
  });

  it('adds the default PATH to a base image whose Env has none', async () => {
    const config = await planConfig('FROM base\n', { images: { base: { config: { Env: ['A=1'] } } } });
    assert.deepEqual(config.Env, ['A=1', defaultPath]);
    const withoutEnv = await planConfig('FROM base\nENV B=2\n', { images: { base: { config: {} } } });
    assert.deepEqual(withoutEnv.Env, [defaultPath, 'B=2']);
  });

  it('RUN without WORKDIR runs in /', async () => {
    const stage = await planTarget('FROM scratch\nRUN pwd\n');
    assert.equal(runs(stage)[0]!.workdir, '/');
  });

  it('STOPSIGNAL accepts names, numbers and real-time signals', async () => {
    for (const signal of ['SIGTERM', 'KILL', 'sigusr1', '9', 'SIGRTMIN+3', 'RTMAX-1']) {
      assert.equal((await planConfig(`FROM scratch\nSTOPSIGNAL ${signal}\n`)).StopSignal, signal);
    }
    assert.equal((await planConfig('FROM scratch\nARG S=SIGQUIT\nSTOPSIGNAL $S\n')).StopSignal, 'SIGQUIT');
  });

  it('STOPSIGNAL rejects an unknown signal at its line', async () => {
    await assertFailsAt('FROM scratch\nSTOPSIGNAL SIGFOO\n', 2, /invalid signal: SIGFOO/i);
    await assertFailsAt('FROM scratch\n\nSTOPSIGNAL 0\n', 3, /invalid signal: 0/i);
  });

  it('SHELL applies to later shell-form RUN, CMD and ENTRYPOINT, not to exec form', async () => {
    const text = [
      'FROM scratch',
      'RUN before',
      'SHELL ["/bin/bash", "-eo", "pipefail", "-c"]',
      'RUN echo $HOME | cat',
      'RUN ["echo", "exec"]',
      'CMD run --flag',
      'ENTRYPOINT ["tini", "--"]',
      'HEALTHCHECK CMD check',
      '',
    ].join('\n');
    const stage = await planTarget(text);
    const [before, after, exec] = runs(stage);
    assert.deepEqual(before!.args, ['/bin/sh', '-c', 'before']);
    assert.deepEqual(after!.args, ['/bin/bash', '-eo', 'pipefail', '-c', 'echo $HOME | cat']);
    assert.deepEqual(exec!.args, ['echo', 'exec']);
    assert.deepEqual(stage.config.Shell, ['/bin/bash', '-eo', 'pipefail', '-c']);
    assert.deepEqual(stage.config.Cmd, ['/bin/bash', '-eo', 'pipefail', '-c', 'run --flag']);
    assert.deepEqual(stage.config.Entrypoint, ['tini', '--']);
    // HEALTHCHECK's shell form is CMD-SHELL, run by the container runtime, not through SHELL.
    assert.deepEqual(stage.config.Healthcheck?.Test, ['CMD-SHELL', 'check']);
  });

  it('an inherited SHELL applies to shell-form ENTRYPOINT', async () => {
    const config = await planConfig('FROM scratch AS a\nSHELL ["/bin/ash", "-c"]\nFROM a\nENTRYPOINT exec app\n');
    assert.deepEqual(config.Entrypoint, ['/bin/ash', '-c', 'exec app']);
  });

  it('ENTRYPOINT resets an inherited CMD', async () => {
    const config = await planConfig('FROM scratch AS a\nCMD ["base"]\nFROM a\nENTRYPOINT ["app"]\n');
    assert.deepEqual(config.Entrypoint, ['app']);
    assert.ok(config.Cmd === null || config.Cmd === undefined, `Cmd is ${JSON.stringify(config.Cmd)}`);
  });

  it('ENTRYPOINT resets a CMD inherited from a base image', async () => {
    const config = await planConfig('FROM img\nENTRYPOINT ["app"]\n', { images: { img: { config: { Cmd: ['sh'], Entrypoint: ['old'] } } } });
    assert.deepEqual(config.Entrypoint, ['app']);
    assert.ok(!config.Cmd, `Cmd is ${JSON.stringify(config.Cmd)}`);
  });

  it('ENTRYPOINT keeps a CMD set earlier in the same stage', async () => {
    const config = await planConfig('FROM scratch AS a\nCMD ["base"]\nFROM a\nCMD ["--help"]\nENTRYPOINT ["app"]\n');
    assert.deepEqual(config.Entrypoint, ['app']);
    assert.deepEqual(config.Cmd, ['--help']);
  });

  it('CMD and ENTRYPOINT are inherited when not set', async () => {
    const config = await planConfig('FROM scratch AS a\nENTRYPOINT ["app"]\nCMD ["x"]\nFROM a\nENV A=1\n');
    assert.deepEqual(config.Entrypoint, ['app']);
    assert.deepEqual(config.Cmd, ['x']);
  });

  it('HEALTHCHECK records the test and its options', async () => {
    const config = await planConfig('FROM scratch\nHEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=3 CMD ["curl", "-f", "http://localhost/"]\n');
    assert.deepEqual(config.Healthcheck, {
      Test: ['CMD', 'curl', '-f', 'http://localhost/'],
      Interval: 5e9,
      Timeout: 2e9,
      StartPeriod: 60e9,
      Retries: 3,
    });
  });

  it('HEALTHCHECK NONE disables an inherited check', async () => {
    const config = await planConfig('FROM scratch AS a\nHEALTHCHECK CMD true\nFROM a\nHEALTHCHECK NONE\n');
    assert.deepEqual(config.Healthcheck, { Test: ['NONE'] });
  });

  it('ONBUILD is recorded in the config and not run in the stage itself', async () => {
    const stage = await planTarget('FROM scratch\nONBUILD RUN make\nONBUILD ENV A=1\n');
    assert.deepEqual(stage.config.OnBuild, ['RUN make', 'ENV A=1']);
    // As in BuildKit, ONBUILD leaves no history entry.
    assert.deepEqual(stage.steps, []);
    assert.ok(!envMap(stage.config.Env).has('A'));
  });

  it('ONBUILD triggers of a base stage run first in the stage built on it and are not kept', async () => {
    const stage = await planTarget('FROM scratch AS a\nONBUILD ENV A=1\nONBUILD RUN echo $A\nFROM a\nENV B=$A\n');
    assert.deepEqual(stage.steps.map((s) => s.createdBy), ['ENV A=1', 'RUN /bin/sh -c echo $A', 'ENV B=1']);
    assert.equal(envMap(stage.config.Env).get('B'), '1');
    assert.equal(stage.config.OnBuild, undefined);
  });

  it('MAINTAINER sets the author, which a stage built on it keeps', async () => {
    const p = await platformPlan('FROM scratch AS a\nMAINTAINER Jane Doe <jane@example.com>\nFROM a\nENV X=1\n');
    assert.equal(p.stages[0]!.author, 'Jane Doe <jane@example.com>');
    assert.equal(targetOf(p).author, 'Jane Doe <jane@example.com>');
  });

  it('records one step per instruction with its source line', async () => {
    const stage = await planTarget('FROM scratch\nLABEL a=b\nENV X=1\nCOPY a /a\nRUN true\n');
    assert.deepEqual(stage.steps.map((s) => [s.kind, s.location.startLine]), [
      ['metadata', 2],
      ['metadata', 3],
      ['copy', 4],
      ['run', 5],
    ]);
  });
});

describe('COPY and ADD', () => {
  it('expand sources, destination and flags with the stage variables', async () => {
    const stage = await planTarget('FROM scratch\nARG SRC=src U=1000\nCOPY --chown=$U:$U --chmod=644 ${SRC}/a.txt /dst/\nADD --checksum=sha256:${U} https://example.com/x /x\n');
    const [copy, add] = copies(stage);
    assert.deepEqual(copy!.sources, ['src/a.txt']);
    assert.equal(copy!.dest, '/dst/');
    assert.equal(copy!.chown, '1000:1000');
    assert.equal(copy!.chmod, '644');
    assert.deepEqual(copy!.from, { kind: 'context' });
    assert.equal(add!.instruction, 'ADD');
    assert.equal(add!.checksum, 'sha256:1000');
  });

  it('ADD takes git sources with --keep-git-dir and a commit as checksum, and refuses those flags elsewhere', async () => {
    const stage = await planTarget('FROM scratch\nADD --keep-git-dir --checksum=' + 'a'.repeat(40) + ' https://example.com/repo.git#v1:sub /src\n');
    assert.equal(copies(stage)[0]!.keepGitDir, true);
    assert.equal(copies(stage)[0]!.checksum, 'a'.repeat(40));
    await assertFailsAt('FROM scratch\nADD --keep-git-dir https://example.com/a.tgz /x\n', 2, '--keep-git-dir applies only to git sources');
    await assertFailsAt('FROM scratch\nADD --checksum=sha256:' + 'a'.repeat(64) + ' git@example.com:org/repo.git /x\n', 2, /^checksum of a git source must be a full commit hash/);
    await assertFailsAt('FROM scratch\nADD --checksum=' + 'a'.repeat(40) + ' notes.txt /x\n', 2, "checksum can't be specified for non-HTTP(S) sources");
  });

  it('expand heredoc sources unless the delimiter is quoted', async () => {
    const stage = await planTarget("FROM scratch\nARG V=val\nCOPY <<EOF <<'RAW' /dir/\n$V\nEOF\n$V\nRAW\n");
    assert.deepEqual(copies(stage)[0]!.sourceContents.map((s) => s.data), ['val\n', '$V\n']);
  });

  it('COPY --from takes no variables, as in BuildKit, even in a stage the target does not need', async () => {
    const message = /^variable expansion is not supported for --from/;
    await assertFailsAt('FROM scratch AS b\nFROM scratch\nARG S=b\nCOPY --from=$S /a /a\n', 4, message);
    await assertFailsAt('ARG S=b\nFROM scratch AS b\nFROM scratch AS unused\nCOPY --from=${S} /a /a\nFROM scratch\n', 4, message);
  });

  it('COPY --from a name that is not a stage or context is pulled, failing at its line', async () => {
    await assertFailsAt('FROM scratch\nCOPY --from=nowhere /a /a\n', 2, /no registry in plan tests \(asked for nowhere\)/);
    await assertFailsAt('FROM scratch\nCOPY --from=3 /a /a\n', 2, /no earlier stage has index 3/);
  });
});

describe('stage graph', () => {
  const threeStages = [
    'FROM scratch AS one',
    'RUN one',
    'FROM scratch AS two',
    'RUN two',
    'FROM scratch AS three',
    'RUN three',
    '',
  ].join('\n');

  it('targets the last stage by default and plans only what it needs', async () => {
    const p = await platformPlan(threeStages);
    assert.equal(p.targetIndex, 2);
    assert.deepEqual(p.stages.map((s) => s.name), ['three']);
  });

  it('--target selects a stage, case-insensitively', async () => {
    const p = await platformPlan(threeStages, { target: 'TWO' });
    assert.equal(p.targetIndex, 1);
    assert.deepEqual(p.stages.map((s) => s.name), ['two']);
    assert.equal(targetOf(p).location.startLine, 3);
  });

  it('an unknown --target is a clear error', async () => {
    await assert.rejects(plan(threeStages, { target: 'four' }), (err: unknown) => {
      assert.ok(err instanceof TsbuildError);
      assert.equal(err.message, 'target stage "four" could not be found');
      return true;
    });
  });

  it('does not resolve stages the target does not need', async () => {
    const text = 'FROM does-not-exist:1.0 AS unused\nRUN x\nFROM scratch AS wanted\nRUN y\nFROM img AS also-unused\n';
    const options = planOptions({ target: 'wanted', images: { img: {} } });
    const p = await createPlan(parseDockerfile(text, 'Dockerfile'), 'Dockerfile', options);
    assert.deepEqual(p.platforms[0]!.stages.map((s) => s.name), ['wanted']);
    assert.deepEqual(options.resolved, []);
  });

  it('fails on the FROM line of a needed stage whose base is pulled from a registry, with the registry error', async () => {
    await assertFailsAt('FROM scratch AS ok\n\nFROM missing:latest\n', 3, /no registry in plan tests \(asked for missing:latest\)/);
  });

  it('a local build context cannot be a base image', async () => {
    const parsed = parseDockerfile('FROM ctx\n', 'Dockerfile');
    const options = planOptions({});
    const buildContexts = new Map<string, NamedContext>([['ctx', { kind: 'local', name: 'ctx', dir: '/tmp/ctx' }]]);
    await assert.rejects(createPlan(parsed, 'Dockerfile', { ...options, buildContexts }), /^SourceError: Dockerfile:1: build context "ctx" is a local directory/);
  });

  it('COPY --from by name or index and FROM stage pull in dependencies', async () => {
    const text = [
      'FROM scratch AS base', // 0
      'FROM base AS deps', // 1
      'FROM scratch AS unused', // 2
      'FROM scratch AS assets', // 3
      'FROM scratch AS tools', // 4
      'FROM deps', // 5
      'COPY --from=assets /a /a',
      'COPY --from=4 /t /t',
      'COPY --from=Assets /b /b',
      '',
    ].join('\n');
    const p = await platformPlan(text);
    assert.deepEqual(p.stages.map((s) => s.index), [0, 1, 3, 4, 5]);
    const target = targetOf(p);
    assert.deepEqual(target.base, { kind: 'stage', index: 1 });
    assert.deepEqual(copies(target).map((c) => c.from), [
      { kind: 'stage', index: 3 },
      { kind: 'stage', index: 4 },
      { kind: 'stage', index: 3 },
    ]);
  });

  it('COPY --from a local build context reads that directory', async () => {
    const parsed = parseDockerfile('FROM scratch\nCOPY --from=ctx /a /a\n', 'Dockerfile');
    const buildContexts = new Map<string, NamedContext>([['ctx', { kind: 'local', name: 'ctx', dir: '/tmp/ctx' }]]);
    const p = await createPlan(parsed, 'Dockerfile', { ...planOptions({}), buildContexts });
    assert.deepEqual(copies(targetOf(p.platforms[0]!))[0]!.from, { kind: 'local-context', name: 'ctx', dir: '/tmp/ctx' });
  });

  it('stage dependencies are planned per platform', async () => {
    const result = await plan('FROM scratch AS a\nARG TARGETARCH\nENV A=$TARGETARCH\nFROM a\n', { platforms: [amd64, arm64] });
    assert.deepEqual(
      result.platforms.map((p) => p.stages.map((s) => envMap(s.config.Env).get('A'))),
      [
        ['amd64', 'amd64'],
        ['arm64', 'arm64'],
      ],
    );
  });

  it('duplicate stage names are an error at the second FROM', async () => {
    await assertFailsAt('FROM scratch AS dup\nRUN x\nFROM scratch AS DUP\n', 3, /duplicate stage name "dup"/);
  });

  it('an invalid stage name is an error at its FROM', async () => {
    await assertFailsAt('FROM scratch\nFROM scratch AS 1st\n', 2, /invalid name for build stage: "1st"/);
  });

  it('a FROM that expands to nothing is an error at its line', async () => {
    await assertFailsAt('ARG EMPTY=\nFROM scratch AS a\n\nFROM ${EMPTY}\n', 4, 'base name (${EMPTY}) should not be blank');
    await assertFailsAt('FROM $UNSET\n', 1, 'base name ($UNSET) should not be blank');
  });

  it('a FROM that expands to nothing is an error even in a stage the target does not need', async () => {
    await assertFailsAt('FROM $UNSET AS unused\nFROM scratch\n', 1, 'base name ($UNSET) should not be blank');
  });

  it('ONBUILD triggers of a base image that fail report their trigger', async () => {
    await assert.rejects(
      plan('FROM img\n', { images: { img: { config: { OnBuild: ['STOPSIGNAL NOPE'] } } } }),
      /invalid signal: NOPE/i,
    );
  });
});

describe('notes', () => {
  it('a # syntax= directive produces a note', async () => {
    const result = await plan('# syntax=docker/dockerfile:1\nFROM scratch\n');
    assert.equal(result.notes.length, 1);
    assert.match(result.notes[0]!, /syntax=docker\/dockerfile:1/);
  });

  it('unused --build-args produce one note listing them; consumed ones are not listed', async () => {
    const text = 'ARG GLOBAL\nFROM scratch\nARG STAGE\n';
    const result = await plan(text, { buildArgs: { GLOBAL: '1', STAGE: '2', ZED: '3', ALPHA: '4' } });
    assert.deepEqual(result.notes, ['one or more build-args [ALPHA ZED] were not consumed']);
    assert.deepEqual((await plan(text, { buildArgs: { GLOBAL: '1' } })).notes, []);
  });

  it('a plain Dockerfile has no notes', async () => {
    assert.deepEqual((await plan('FROM scratch\n')).notes, []);
  });
});

describe('base image from an OCI layout build context (planBuild)', () => {
  let dir = '';
  let layoutDir = '';
  let dockerfile = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-plan-'));
    layoutDir = join(dir, 'layout');
    const layout = await OciLayout.open(layoutDir, { create: true });
    const host = hostPlatform();
    const config: ImageConfig = {
      ...host,
      author: 'Base Author',
      config: {
        Env: ['PATH=/opt/base/bin:/usr/bin:/bin', 'BASE_VERSION=1.2'],
        Cmd: ['base-cmd'],
        WorkingDir: '/base',
        OnBuild: ['ENV FROM_TRIGGER=v$BASE_VERSION', 'LABEL trigger=yes'],
      },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    };
    const configDescriptor = await layout.writeJson(config, MediaType.ImageConfig);
    const manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDescriptor, layers: [] };
    const manifestDescriptor = await layout.writeJson(manifest, MediaType.ImageManifest);
    await layout.addImage({ ...manifestDescriptor, platform: host }, ['v1']);
    dockerfile = join(dir, 'Dockerfile');
    await writeFile(dockerfile, 'FROM base\nENV MINE=$BASE_VERSION\nRUN echo\n');
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('inherits the Env, runs the ONBUILD triggers first and clears them', async () => {
    const result = await planBuild({ source: { context: dir, dockerfile, buildContexts: [`base=oci-layout://${layoutDir}:v1`] }, env: process.env });
    assert.equal(result.platforms.length, 1);
    const stage = targetOf(result.platforms[0]!);
    assert.equal(stage.base.kind, 'image');
    if (stage.base.kind === 'image') {
      assert.equal(stage.base.contextName, 'base');
      assert.equal(stage.base.image.reference, 'v1');
      assert.equal(stage.base.image.layers.length, 0);
    }
    assert.deepEqual(stage.steps.map((s) => s.createdBy), ['ENV FROM_TRIGGER=v1.2', 'LABEL trigger=yes', 'ENV MINE=1.2', 'RUN /bin/sh -c echo']);
    assert.deepEqual(stage.config.Env, ['PATH=/opt/base/bin:/usr/bin:/bin', 'BASE_VERSION=1.2', 'FROM_TRIGGER=v1.2', 'MINE=1.2']);
    assert.deepEqual(stage.config.Labels, { trigger: 'yes' });
    assert.equal(stage.config.OnBuild, undefined);
    assert.deepEqual(stage.config.Cmd, ['base-cmd']);
    assert.equal(stage.config.WorkingDir, '/base');
    assert.equal(stage.author, 'Base Author');
    const run = runs(stage)[0]!;
    assert.equal(run.workdir, '/base');
    assert.equal(envMap(run.env).get('PATH'), '/opt/base/bin:/usr/bin:/bin');
  });

  it('reports a missing tag at the FROM line', async () => {
    await assert.rejects(planBuild({ source: { context: dir, dockerfile, buildContexts: [`base=oci-layout://${layoutDir}:v2`] }, env: process.env }), (err: unknown) => {
      assert.ok(err instanceof SourceError, String(err));
      assert.equal(err.line, 1);
      assert.match(err.message, /:1: .*no image tagged "v2"/);
      return true;
    });
  });
});
