/** The command-line flags shared by `build` and `plan`, as the library's request fields. */
import { parsePlatform, TsbuildError, type PlanRequest, type ProgressListener, type RegistrySettings } from '../builder/index.js';
import type { CliIo } from './io.js';
import { parsePairs } from './parse-pairs.js';

export interface CommonArgs {
  insecureRegistry: string[];
  registryCa?: string | undefined;
  context: string;
  file?: string | undefined;
  buildArg: string[];
  target?: string | undefined;
  platform: string[];
  buildContext: string[];
}

/** Registry flags as the library's settings, with transfers reported to `listener`. */
export function registrySettings(args: { insecureRegistry: string[]; registryCa?: string | undefined }, env: NodeJS.ProcessEnv, listener?: ProgressListener): RegistrySettings {
  return {
    env,
    insecureRegistries: args.insecureRegistry,
    ...(args.registryCa !== undefined ? { caFile: args.registryCa } : {}),
    ...(listener ? { onTransfer: (event) => listener({ kind: 'transfer', ...event }) } : {}),
  };
}

/** The part of the request `build` and `plan` share: what to build, the registries, and this process's environment. */
export function commonRequest(args: CommonArgs, io: CliIo, listener?: ProgressListener): PlanRequest {
  return {
    source: {
      context: args.context,
      ...(args.file !== undefined ? { dockerfile: args.file } : {}),
      buildArgs: parsePairs('build-arg', args.buildArg, io.env),
      ...(args.target !== undefined ? { target: args.target } : {}),
      platforms: args.platform.flatMap((p) => p.split(',')).filter((p) => p !== '').map(parsePlatform),
      buildContexts: args.buildContext,
    },
    registry: registrySettings(args, io.env, listener),
    env: io.env,
  };
}

export function positiveSeconds(value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new TsbuildError('BAD_FLAG', `invalid --run-timeout ${value}: expected a positive number of seconds`);
  return value;
}

export function sourceDateEpoch(value: string | undefined): { sourceDateEpoch?: number } {
  if (value === undefined || value === '') return {};
  if (!/^\d+$/.test(value)) throw new TsbuildError('BAD_FLAG', `invalid SOURCE_DATE_EPOCH "${value}": expected whole seconds since 1970`);
  return { sourceDateEpoch: Number(value) };
}
