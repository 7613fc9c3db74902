/** Which isolation `--isolation` asks for; `auto` picks the best one available. */
export type IsolationMode = 'auto' | 'oci' | 'chroot' | 'rootless' | 'none';

export interface RunUser {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups, from the rootfs's `/etc/group`. */
  readonly additionalGids: readonly number[];
}

/** A bind mount of a host file or directory into the container, e.g. the generated `/etc/hosts`. */
export interface BindMount {
  /** Absolute path inside the container. */
  readonly destination: string;
  /** Absolute path on the host. */
  readonly source: string;
  readonly readonly: boolean;
}

/** Everything a backend needs to run one RUN step's process. */
export interface RunSpec {
  /** The prepared root filesystem directory; the process's changes land here. */
  readonly rootfs: string;
  readonly args: readonly string[];
  /** `KEY=value` pairs, complete (the caller adds PATH and HOME defaults). */
  readonly env: readonly string[];
  /** Absolute working directory inside the container; it exists in the rootfs. */
  readonly cwd: string;
  readonly user: RunUser;
  readonly hostname: string;
  /**
   * `host` shares the host's network. `none` gives the process a network namespace with only a
   * loopback interface. `default` is backend-specific: oci and none share the host's network;
   * chroot and rootless give the step its own namespace, connected to the outside by slirp4netns
   * when it is usable (else loopback only).
   */
  readonly network: 'default' | 'none' | 'host';
  /**
   * Files and directories bound into the container (`/etc/hosts`, `/etc/hostname`,
   * `/etc/resolv.conf`). Their mount points exist in the rootfs before the run.
   */
  readonly binds: readonly BindMount[];
  /** A private scratch directory for the backend (bundles, state), removed by the caller. */
  readonly scratchDir: string;
  readonly stdout: (chunk: Buffer) => void;
  readonly stderr: (chunk: Buffer) => void;
  /** Aborting kills the process and everything it started, then `run` rejects. */
  readonly signal?: AbortSignal;
}

export interface RunResult {
  /** The process's exit status; 128+N when killed by signal N. */
  readonly exitCode: number;
}

/**
 * Runs a process in an isolated root filesystem. The process gets a private `/proc`, a minimal
 * `/dev` (null, zero, full, random, urandom, tty, pts, shm), a read-only `/sys` and the `binds`.
 * The caller creates the mount points (`/proc`, `/dev`, `/sys` and every bind destination) in the
 * rootfs before `run` and removes them afterwards; a backend must leave nothing else behind in the
 * rootfs (no mounts, no stubs, no runtime files) once `run` settles, whatever the outcome.
 */
export interface IsolationBackend {
  readonly name: Exclude<IsolationMode, 'auto'>;
  run(spec: RunSpec): Promise<RunResult>;
  /**
   * Starts one sandbox for several steps that share its shape (root, hostname, network, binds),
   * run one at a time; absent when the backend only runs one process per sandbox.
   */
  openSandbox?(spec: SandboxSpec): Promise<StepSandbox>;
}

/** What a sandbox's steps share: everything of a RunSpec but the process, its output and its abort signal. */
export type SandboxSpec = Pick<RunSpec, 'rootfs' | 'hostname' | 'network' | 'binds' | 'scratchDir'>;

/** One step in a sandbox. Its user has no supplementary groups. */
export type SandboxStep = Pick<RunSpec, 'args' | 'env' | 'cwd' | 'user' | 'stdout' | 'stderr' | 'signal'>;

/**
 * A sandbox that runs steps one after another, each in the same confinement a sandbox of its own
 * would give it: when a step ends, nothing it started still runs, and no IPC object or file it
 * made outside the rootfs (in `/dev`) remains. The rootfs is the spec's, changed in place.
 */
export interface StepSandbox {
  /** Runs one step, as `IsolationBackend.run` does; rejects while another step runs. */
  run(step: SandboxStep): Promise<RunResult>;
  /**
   * True once a step changed what the sandbox's next steps would inherit from it (resource limits,
   * priority, CPU affinity...): the sandbox must then be closed, not given another step.
   */
  readonly spent: boolean;
  /** Stops the sandbox and removes what it made outside the rootfs; safe to call more than once. */
  close(): Promise<void>;
}
