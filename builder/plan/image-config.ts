import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';

/**
 * Parses an EXPOSE word (`80`, `80/udp`, `8000-8002/tcp`) into config port keys, expanding
 * ranges as Docker does.
 */
export function exposedPortKeys(spec: string): string[] {
  const match = /^(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/.exec(spec);
  if (!match) throw new TsbuildError('BAD_PORT', `invalid port specification: "${spec}"`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  const proto = (match[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new TsbuildError('BAD_PORT', `invalid proto: "${match[3]}"`);
  if (first > 65535 || last > 65535 || last < first) throw new TsbuildError('BAD_PORT', `invalid port range: "${spec}"`);
  const keys: string[] = [];
  for (let port = first; port <= last; port++) keys.push(`${port}/${proto}`);
  return keys;
}

const signalNames = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL',
  'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1',
  'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

/** Checks a STOPSIGNAL value: a number, a name with or without `SIG`, or `RTMIN+n`. */
export function validateStopSignal(signal: string): string {
  const name = signal.toUpperCase().replace(/^SIG/, '');
  const valid = /^\d+$/.test(signal) ? Number(signal) > 0 && Number(signal) <= 64 : signalNames.has(name) || /^RTM(IN|AX)([+-]\d+)?$/.test(name);
  if (!valid) throw new TsbuildError('BAD_SIGNAL', `invalid signal: ${signal}`);
  return signal;
}

/**
 * WORKDIR as BuildKit records it: an absolute path exactly as written (`/app/` keeps its slash),
 * a relative one joined to the current directory and cleaned.
 */
export function resolveWorkdir(current: string | undefined, next: string): string {
  return next.startsWith('/') ? next : cleanPath(`${current || '/'}/${next}`);
}

/** An absolute path with `.`, `..`, repeated and trailing slashes resolved. */
export function cleanPath(p: string): string {
  return path.posix.resolve('/', p);
}

/** A COPY/ADD destination made absolute against WORKDIR; a trailing slash (directory) is kept. */
export function resolveCopyDest(workdir: string | undefined, dest: string): string {
  const isDir = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  const absolute = cleanPath(dest.startsWith('/') ? dest : `${workdir || '/'}/${dest}`);
  return isDir && absolute !== '/' ? `${absolute}/` : absolute;
}
