import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import { RootDir } from '../../layers/native/in-root.js';
import type { StageRun } from '../exec/stage-run.js';
import { resolveProcessUser, type ProcessUser } from '../exec/user-db.js';
import type { Workspace } from '../workspace/workspace.js';
import { resolveInRoot } from '../fs/resolve-path.js';
import type { IsolationBackend, RunResult, SandboxStep } from '../isolation/backend.js';
import type { PreparedRootfs } from '../rootfs/prepare.js';
import type { RunStep } from '../model/plan.js';
import { diffOverlayUpper } from '../snapshot/overlay-diff.js';
import { diffTrees } from '../snapshot/diff.js';
import { parentOf } from '../snapshot/entries.js';
import { rescanPaths, scanTree } from '../snapshot/scan.js';
import { buildHostname, etcBindMounts } from './etc-files.js';
import { openStepSession, sessionShape } from './step-session.js';
import { LineBuffer } from '../isolation/line-buffer.js';
import { createMountStubs, systemMountPoints, type MountStubs } from './mount-points.js';
import { prepareMounts, type MountContext } from './prepare-mounts.js';
import { runCommand } from './run-command.js';

const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunStepContext {
  readonly backend: IsolationBackend;
  readonly workspace: Workspace;
  readonly output: (stream: 'stdout' | 'stderr', text: string) => void;
  readonly signal?: AbortSignal;
  /** Kills a step's processes after this many seconds and fails the build. */
  readonly timeoutSeconds?: number;
  /** What `--mount` needs: the cache directory, secrets and bind sources. */
  readonly mounts: Omit<MountContext, 'workspace'>;
}

/**
 * Runs a RUN step's process in the stage's rootfs and returns what it changed as layer entries.
 * The sandbox's mount points and files, and the step's `--mount` targets with everything under
 * them, are kept out of the snapshot; the stubs made for them are removed afterwards.
 */
export async function runStepEntries(step: RunStep, run: StageRun, ctx: RunStepContext): Promise<LayerEntry[]> {
  if (step.security === 'insecure') throw new TsbuildError('RUN_UNSUPPORTED', 'RUN --security=insecure is not allowed: it needs a privileged entitlement tsbuild does not grant');
  const prepared = await run.prepared('run');
  const user = resolveProcessUser(step.user, prepared.dir);
  const shape = sessionShape(step, user, ctx.backend);
  const open = run.session;
  if (open && (open.shape !== shape || open.prepared !== prepared)) await run.endSession();
  if (shape === undefined || unsharedBackends.has(ctx.backend)) return runAlone(step, run, ctx, prepared, user);
  let session = run.session;
  if (!session) {
    try {
      session = run.startSession(await openStepSession(step, shape, prepared, ctx.backend, ctx.workspace));
    } catch (error) {
      if (!(error instanceof TsbuildError) || error.code !== 'ISOLATION') throw error;
      // Steps ran one sandbox each before sandboxes were shared: they still can.
      unsharedBackends.add(ctx.backend);
      ctx.output('stderr', `note: RUN steps get a sandbox each: the shared one did not start: ${error.message}\n`);
      return runAlone(step, run, ctx, prepared, user);
    }
  }
  try {
    const entries = await runProcess(step, run, ctx, prepared, {
      created: session.stubs.created,
      usedStubs: session.usedStubs,
      bindPaths: session.bindPaths,
      stubs: session.stubs,
      run: (process) => session.sandbox.run({ ...process, user }),
    }, user.home);
    // The step changed what the next would inherit from the sandbox: the next gets a new one.
    if (session.sandbox.spent) await run.endSession();
    return entries;
  } catch (error) {
    // The step's failure is the one to report; a container left behind is the workspace sweep's.
    await run.endSession().catch(() => undefined);
    throw error;
  }
}

/** Backends whose shared sandbox could not start: their steps run one sandbox each from then on. */
const unsharedBackends = new WeakSet<IsolationBackend>();

/** How a step's process runs: in a sandbox of its own, or a stage's shared one. */
interface StepRunner {
  /** The mount point stubs in the rootfs while the process runs. */
  readonly created: ReadonlySet<string>;
  /** Stubs earlier steps wrote into, now part of the stage's files. */
  readonly usedStubs: Set<string>;
  readonly bindPaths: readonly string[];
  readonly stubs: MountStubs;
  run(process: Omit<SandboxStep, 'user'>): Promise<RunResult>;
}

/** Runs a step in a sandbox of its own, with its `--mount`s. */
async function runAlone(step: RunStep, run: StageRun, ctx: RunStepContext, prepared: PreparedRootfs, user: ProcessUser): Promise<LayerEntry[]> {
  const rootfs = prepared.dir;
  const scratchDir = await ctx.workspace.newDir('run');
  const mounts = await prepareMounts(step.mounts, { ...ctx.mounts, workspace: ctx.workspace });
  let stubs: MountStubs | undefined;
  try {
    const binds = [...(await etcBindMounts(scratchDir, step.extraHosts)).map((b) => ({ ...b, kind: 'file' as const })), ...mounts.binds];
    stubs = await createMountStubs(rootfs, [...systemMountPoints, ...binds]);
    const resolved = stubs.resolved;
    const runner: StepRunner = {
      created: stubs.created,
      usedStubs: new Set(),
      // Bind destinations too: a backend without mounts writes them in place for the run, and their changes never persist.
      bindPaths: binds.map((b) => (resolved.get(b.destination) ?? b.destination).slice(1)),
      stubs,
      run: async (process) =>
        ctx.backend.run({
          ...process,
          rootfs,
          env: [...process.env, ...mounts.env],
          user,
          hostname: buildHostname,
          network: step.network,
          binds: binds.map((b) => ({ destination: resolved.get(b.destination) ?? b.destination, source: b.source, readonly: b.readonly })),
          scratchDir: await ctx.workspace.newDir('run-scratch'),
        }),
    };
    return await runProcess(step, run, ctx, prepared, runner, user.home);
  } finally {
    await stubs?.remove();
    await mounts.release();
  }
}

/**
 * Runs the step's process through `runner` and returns what it changed. The mount point stubs
 * nothing wrote into, the bind destinations and the heredoc script stay out of the snapshots.
 */
async function runProcess(step: RunStep, run: StageRun, ctx: RunStepContext, prepared: PreparedRootfs, runner: StepRunner, home: string): Promise<LayerEntry[]> {
  const rootfs = prepared.dir;
  let command: Awaited<ReturnType<typeof runCommand>> | undefined;
  try {
    command = await runCommand(step.args, step.heredocs, step.shellForm, rootfs);
    const scriptPaths = command.scriptPath ? [command.scriptPath] : [];
    const stubsNow = (): string[] => [...runner.created].filter((rel) => !runner.usedStubs.has(rel));
    let hidden = new Set([...stubsNow(), ...runner.bindPaths, ...scriptPaths]);
    const scanRoot = prepared.upperDir ?? rootfs;
    const exclude = (rel: string): boolean => hidden.has(rel) || (prepared.snapshotExclude?.(rel) ?? false);
    // The previous RUN's final scan still holds, but for the directories this step's stubs and script
    // went into. Not with --mount: the scans of two steps would leave different targets out.
    const carries = step.mounts.length === 0;
    const kept = carries ? run.keptScan(prepared) : undefined;
    const before = kept ? rescanPaths(kept, scanRoot, [...hidden].map(parentOf), { exclude }) : await scanTree(scanRoot, { exclude });
    const cwd = `/${await resolveInRoot(rootfs, step.workdir, 'rootfs', true)}`;
    // Made in-root with no symlink on the way: `cwd` is already resolved.
    RootDir.with(rootfs, (root) => {
      const parts = cwd.split('/').filter((part) => part !== '');
      for (let i = 1; i <= parts.length; i++) root.mkdir(parts.slice(0, i).join('/'), 0o755, 'refuse');
    });
    const stdout = new LineBuffer((text) => ctx.output('stdout', text));
    const stderr = new LineBuffer((text) => ctx.output('stderr', text));
    const deadline = stepDeadline(ctx);
    const result = await runner.run({
      args: command.args,
      env: withDefaults(step.env, home),
      cwd,
      stdout: (chunk) => stdout.push(chunk),
      stderr: (chunk) => stderr.push(chunk),
      ...(deadline.signal ? { signal: deadline.signal } : {}),
    }).finally(deadline.clear);
    stdout.flush();
    stderr.flush();
    if (result.exitCode !== 0) {
      throw new TsbuildError('RUN_FAILED', `process "${step.args.join(' ')}" did not complete successfully: exit code: ${result.exitCode}`);
    }
    // A directory made only to hold a mount point, that the process then wrote into, is part of the layer.
    for (const rel of await runner.stubs.usedDirectories()) runner.usedStubs.add(rel);
    hidden = new Set([...stubsNow(), ...runner.bindPaths, ...scriptPaths]);
    const after = await scanTree(scanRoot, { exclude });
    run.keepScan(prepared, carries ? after : undefined);
    return prepared.upperDir ? await diffOverlayUpper(before, after, prepared.upperDir) : await diffTrees(before, after, rootfs);
  } finally {
    // The process may have replaced the script with anything: removed in the rootfs, never followed.
    const scriptPath = command?.scriptPath;
    if (scriptPath) RootDir.with(rootfs, (root) => root.removeTree(scriptPath, 'refuse'));
  }
}

/** The build's abort signal, combined with the step's time limit when there is one. */
function stepDeadline(ctx: RunStepContext): { signal?: AbortSignal; clear: () => void } {
  if (ctx.timeoutSeconds === undefined) return { ...(ctx.signal ? { signal: ctx.signal } : {}), clear: () => {} };
  const limit = new AbortController();
  const timer = setTimeout(() => limit.abort(new TsbuildError('RUN_TIMEOUT', `RUN did not finish within ${ctx.timeoutSeconds} s and was killed`)), ctx.timeoutSeconds * 1000);
  return { signal: ctx.signal ? AbortSignal.any([ctx.signal, limit.signal]) : limit.signal, clear: () => clearTimeout(timer) };
}

/** The environment a RUN process gets: the step's, plus PATH and HOME when it sets neither. */
function withDefaults(env: readonly string[], home: string): string[] {
  const has = (key: string): boolean => env.some((e) => e.startsWith(`${key}=`));
  return [...(has('PATH') ? [] : [`PATH=${defaultPath}`]), ...env, ...(has('HOME') ? [] : [`HOME=${home}`])];
}
