import type { ProgressListener } from '../builder/progress.js';
import type { RegistrySettings } from '../builder/registry/registry-access.js';
import { parsePlatform } from '../builder/plan/platform.js';
import { parseAddHosts } from '../builder/plan/run-defaults.js';
import type { CliIo } from './io.js';
import { parsePairs } from './parse-pairs.js';

/** The flags every command that plans a build takes. */
export interface PlanFlags extends RegistryFlags {
  context: string;
  file?: string | undefined;
  buildArg: string[];
  target?: string | undefined;
  platform: string[];
  buildContext: string[];
  network?: 'default' | 'none' | 'host' | undefined;
  addHost: string[];
  pull: boolean;
}

export interface RegistryFlags {
  insecureRegistry: string[];
  registryCa?: string | undefined;
  pull?: boolean;
}

/** Registry flags as the library's settings, with transfers reported to `listener`. */
export function registrySettings(args: RegistryFlags, env: NodeJS.ProcessEnv, listener?: ProgressListener): RegistrySettings {
  return {
    env,
    insecureRegistries: args.insecureRegistry,
    ...(args.registryCa !== undefined ? { caFile: args.registryCa } : {}),
    ...(args.pull ? { pull: true } : {}),
    ...(listener ? { onTransfer: (event) => listener({ kind: 'transfer', ...event }) } : {}),
  };
}

/** The part of a build request the plan flags make. */
export function planRequest(args: PlanFlags, io: CliIo, listener?: ProgressListener) {
  return {
    registry: registrySettings(args, io.env, listener),
    context: args.context,
    ...(args.file !== undefined ? { dockerfile: args.file } : {}),
    buildArgs: parsePairs('build-arg', args.buildArg, io.env),
    ...(args.target !== undefined ? { target: args.target } : {}),
    platforms: args.platform.flatMap((p) => p.split(',')).filter((p) => p !== '').map(parsePlatform),
    buildContexts: args.buildContext,
    ...(args.network !== undefined ? { network: args.network } : {}),
    extraHosts: parseAddHosts(args.addHost),
  };
}
