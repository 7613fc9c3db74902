/**
 * What tsbuild tells the launcher, and the messages between them. The launcher starts with fd 1
 * the step's stdout, fd 2 for diagnostics of the tools before it (unshare, node), fd 3 the step's
 * stderr and fd 4 the control socket: tsbuild writes the config as one JSON line there, the
 * launcher answers with lines (`network <pid>`, `started`, `error <message>`).
 */

export const stepStderrFd = 3;
export const controlFd = 4;

/** A bind mount with its target already resolved inside the rootfs. */
export interface ResolvedBind {
  readonly source: string;
  readonly target: string;
  readonly readonly: boolean;
}

/** How the step's network namespace is set up. */
export type LauncherNetwork = 'host' | 'loopback' | 'slirp4netns';

export interface LauncherConfig {
  /** The rootfs, with symlinks resolved. */
  readonly rootfs: string;
  /** Host paths of the mount points in the rootfs, resolved inside it before the launch. */
  readonly proc: string;
  readonly dev: string;
  readonly sys: string;
  readonly binds: readonly ResolvedBind[];
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
  /** False in a single-id user namespace: the step keeps uid and gid 0 and no groups are set. */
  readonly switchIds: boolean;
  /** Group of new /dev/pts terminals (tty, 5), or undefined when that gid is not mapped. */
  readonly ptsGid: number | undefined;
  readonly hostname: string;
  readonly network: LauncherNetwork;
  /**
   * Serve steps (step-server.cts) on stdin and stdout instead of exec'ing `args`: the launcher
   * stays root with the default capabilities, and each step gets its ids when it is spawned.
   */
  readonly serve?: boolean;
}

/** Launcher to tsbuild: connect the network namespace of (host) pid N, then answer `networkReady`. */
export const networkRequest = 'network';
export const networkReady = 'network-ready';
/** Launcher to tsbuild: setup is done, the command is being exec'd. */
export const startedMessage = 'started';
/** Launcher to tsbuild: setup failed; the rest of the line says why. */
export const errorMessage = 'error';
