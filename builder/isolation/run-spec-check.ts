import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import type { RunSpec } from './backend.js';

/** Refuses a RunSpec no backend can honour: no command, a malformed environment, relative container paths, bad ids. */
export function checkRunSpec(spec: RunSpec): void {
  if (spec.args.length === 0) throw new TsbuildError('ISOLATION', 'nothing to run: the command is empty');
  const bad = spec.env.find((entry) => !/^[^=]+=/.test(entry));
  if (bad !== undefined) throw new TsbuildError('ISOLATION', `environment entry ${JSON.stringify(bad)} is not KEY=value`);
  for (const p of [spec.cwd, ...spec.binds.map((bind) => bind.destination)]) {
    if (!path.isAbsolute(p)) throw new TsbuildError('ISOLATION', `container path ${p} is not absolute`);
  }
  for (const id of [spec.user.uid, spec.user.gid, ...spec.user.additionalGids]) {
    if (!Number.isInteger(id) || id < 0) throw new TsbuildError('ISOLATION', `invalid user or group id ${id}`);
  }
}
