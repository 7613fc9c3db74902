/**
 * Generates hostile Dockerfiles from a seeded pseudo-random sequence: mostly valid instructions with
 * random flags, mixed with unbalanced quotes and heredocs, deeply nested `${...}`, huge words, odd
 * escapes, unicode, NULs, long lines, many stages and `--from` cycles. The same seed always gives
 * the same files. Base names are only stages, `scratch`, the names in `contextNames` (which the
 * caller maps to local build contexts) and a closed port on 127.0.0.1, so planning never leaves
 * this machine.
 */

/**
 * Stage names the generator uses; whichever are not stages must be given as build contexts: `base`
 * as an image (an OCI layout), the others as directories.
 */
export const contextNames = ['a', 'b', 'c', 'base', 'builder'];

export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** mulberry32: a small generator that is good enough for test data. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(below: number): number {
    return Math.floor(this.next() * below);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

const variables = ['A', 'B', 'PATH', 'HOME', 'X_1', 'ü', '0', '@'];

function nested(r: Random, depth: number): string {
  const ops = [':-', '-', ':+', '+', '#', '##', '%', '%%', '/a/', '//?/', '?'];
  const open = Array.from({ length: depth }, () => `\${${r.pick(variables)}${r.pick(ops)}`).join('');
  return `${open}x${'}'.repeat(r.chance(0.8) ? depth : r.int(depth))}`;
}

export function word(r: Random): string {
  switch (r.int(24)) {
    case 0: return `"${word(r)}`;
    case 1: return `'${word(r)}`;
    case 2: return `$${r.pick(variables)}`;
    case 3: return nested(r, 1 + r.int(4));
    case 4: return nested(r, r.pick([50, 500, 3000, 20000]));
    case 5: return r.pick(['\\', '\\\\', '`', '\\$', '\\"', '\\\n', '\\ ', '$', '${', '${}', '${:}', '${A', '${A:', '${A/', '${A:?}', '${A?boom}', '${A:x}']);
    case 6: return r.pick(['ü日本', '🚀🚀', '\u202e', '\ufeff', '\u00a0', 'e\u0301', '\ud800']);
    case 7: return `x\0y`;
    case 8: return 'w'.repeat(r.pick([1000, 100000, 1100000]));
    case 9: return `"${r.pick(variables)} ${word(r)}"`;
    case 10: return `${word(r)}${word(r)}`;
    case 11: return r.pick(['/', '.', '..', '../..', '/etc/../..', '*', '**', '[', '?', '{a,b}']);
    case 13: return `\${${r.pick(variables)}${r.pick(['//', '/', '#', '##', '%', '%%'])}${'*a'.repeat(1 + r.int(8))}${r.pick(['*b', 'b', '?'])}${r.chance(0.5) ? '/x' : ''}}`;
    case 12: return r.pick(['http://127.0.0.1:1/f', 'https://[bad', 'http://', 'git@127.0.0.1:x/y.git', 'https://127.0.0.1:1/r.git#ref:dir']);
    default: return r.pick(['x', 'abc', 'a b', '1', '80/tcp', '1-65536', 'root', '0:0', '/app', 'value=1', '-', '--', '""', "''"]);
  }
}

function flag(r: Random, names: readonly string[]): string {
  const name = r.pick([...names, 'bogus', '', '-']);
  return r.chance(0.2) ? `--${name}` : `--${name}=${word(r)}`;
}

function ref(r: Random, stages: readonly string[]): string {
  return r.pick([...stages, ...contextNames, 'scratch', 'SCRATCH', String(r.int(5)), '127.0.0.1:1/missing', '$A', '${A:-scratch}']);
}

function jsonArray(r: Random): string {
  if (r.chance(0.3)) return r.pick(['[', '["a"', '[1, 2]', '[]', '["a",]', '{"a":1}', '["\\u0000"]', '["\\ud800"]']);
  return JSON.stringify(Array.from({ length: r.int(4) }, () => word(r)));
}

function heredoc(r: Random, command: string): string {
  const marker = r.pick(['EOF', '"EOF"', "'EOF'", '-EOF', 'E\u00fcF', '']);
  const body = Array.from({ length: r.int(4) }, () => word(r)).join('\n');
  const end = r.chance(0.7) ? `\n${marker.replace(/["'-]/g, '')}` : '';
  return `${command} <<${marker}\n${body}${end}`;
}

function instruction(r: Random, stages: readonly string[]): string {
  switch (r.int(22)) {
    case 0: return `ARG ${r.pick(variables)}${r.chance(0.7) ? `=${word(r)}` : ''}`;
    case 1: return `ENV ${r.pick(variables)}=${word(r)}${r.chance(0.3) ? ` ${word(r)}` : ''}`;
    case 2: return `LABEL ${word(r)}=${word(r)}`;
    case 3: return `RUN ${r.chance(0.4) ? flag(r, ['mount', 'network', 'security']) + ' ' : ''}${r.chance(0.3) ? jsonArray(r) : word(r)}`;
    case 4: return `RUN --mount=${r.pick(['type=bind', 'type=cache', 'type=secret', 'type=ssh', 'type=tmpfs', 'type=nope'])},${r.pick(['target=/t', 'from=' + ref(r, stages), 'source=..', 'id=', 'mode=999', 'size=1', word(r)])} true`;
    case 5: return `COPY ${r.chance(0.5) ? `--from=${ref(r, stages)} ` : ''}${r.chance(0.3) ? flag(r, ['chown', 'chmod', 'link', 'parents', 'exclude']) + ' ' : ''}${word(r)} ${word(r)}`;
    case 6: return `ADD ${r.chance(0.4) ? flag(r, ['checksum', 'keep-git-dir', 'unpack', 'chown', 'link']) + ' ' : ''}${word(r)} ${word(r)}`;
    case 7: return `WORKDIR ${word(r)}`;
    case 8: return `USER ${word(r)}`;
    case 9: return `EXPOSE ${word(r)}`;
    case 10: return `VOLUME ${r.chance(0.5) ? jsonArray(r) : word(r)}`;
    case 11: return `${r.pick(['CMD', 'ENTRYPOINT'])} ${r.chance(0.5) ? jsonArray(r) : word(r)}`;
    case 12: return `HEALTHCHECK ${r.chance(0.5) ? flag(r, ['interval', 'timeout', 'retries', 'start-period', 'start-interval']) + ' ' : ''}${r.pick(['NONE', 'CMD', 'CMD true', 'RUN x', ''])}`;
    case 13: return `SHELL ${jsonArray(r)}`;
    case 14: return `STOPSIGNAL ${word(r)}`;
    case 15: return `ONBUILD ${r.pick(['ONBUILD x', 'FROM x', 'MAINTAINER m', instruction(r, stages)])}`;
    case 16: return heredoc(r, r.pick(['RUN', 'COPY', 'RUN cat', 'COPY --chmod=755']) + (r.chance(0.5) ? ' /dest' : ''));
    case 17: return `${r.pick(['FOO', 'run', 'Copy', '', '\u0000'])} ${word(r)}`;
    case 18: return `${r.pick(['RUN', 'LABEL a=', 'ENV A'])} ${word(r)} \\`;
    case 19: return r.pick(['# comment', '', '   ', '\\', '\t\t', '# escape=`', '# syntax=x']);
    case 20: return `MAINTAINER ${word(r)}`;
    default: return `ENV ${r.pick(variables)} ${word(r)}`;
  }
}

/** A well-formed instruction, so that some files get far enough to plan. */
function validInstruction(r: Random, stages: readonly string[]): string {
  const value = r.pick(['x', '1', '$A', '${B:-b}', '"a b"', 'ü日本', '${PATH}/bin']);
  return r.pick([
    `ARG ${r.pick(variables.slice(0, 5))}=${value}`,
    `ENV ${r.pick(variables.slice(0, 5))}=${value}`,
    `LABEL k${r.int(9)}=${value}`,
    `WORKDIR /w/${value}`,
    `USER ${r.pick(['root', '1000:1000', '$A'])}`,
    `EXPOSE ${1 + r.int(65535)}/${r.pick(['tcp', 'udp'])}`,
    `VOLUME ["/v${r.int(9)}"]`,
    'CMD ["sh", "-c", "true"]',
    'ENTRYPOINT ["/bin/x"]',
    'RUN --mount=type=cache,target=/c true',
    `RUN --mount=type=bind,from=${r.pick(stages.length > 0 ? stages : ['a'])},target=/b true`,
    `COPY ${r.chance(0.5) && stages.length > 0 ? `--from=${r.pick(stages)} ` : ''}file /f${r.int(9)}`,
    'COPY <<EOF /h\nhello $A\nEOF',
    'ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 http://127.0.0.1:1/f /f',
    'HEALTHCHECK --interval=5s CMD true',
    'SHELL ["/bin/bash", "-c"]',
    'STOPSIGNAL SIGTERM',
    'ONBUILD RUN true',
  ]);
}

/** One Dockerfile: directives, global ARGs, then stages of instructions; some are one of the large shapes. */
export function dockerfile(r: Random): string {
  const shape = r.int(20);
  if (shape === 0) {
    // A long chain of stages, each built on or copying from the one before.
    const count = r.pick([200, 2000]);
    const lines = ['FROM scratch AS s0'];
    for (let i = 1; i < count; i++) lines.push(r.chance(0.5) ? `FROM s${i - 1} AS s${i}` : `FROM scratch AS s${i}\nCOPY --from=s${i - 1} / /`);
    return `${lines.join('\n')}\n`;
  }
  if (shape === 1) {
    // Variables that double on each line.
    const lines = ['FROM scratch', 'ARG A0=xy'];
    for (let i = 1; i < 40; i++) lines.push(`ARG A${i}=\${A${i - 1}}\${A${i - 1}}`);
    return `${lines.join('\n')}\n`;
  }
  if (shape === 3) {
    // A value that grows, then deep nesting or a pattern over it.
    const lines = ['FROM scratch', 'ARG A=aa'];
    for (let i = r.int(18); i > 0; i--) lines.push('ARG A=${A}${A}');
    lines.push(`${r.pick(['ENV', 'ARG', 'LABEL'])} B=${r.chance(0.5) ? nested(r, r.pick([99, 100, 101, 5000])) : word(r)}`);
    return `${lines.join('\n')}\n`;
  }
  if (shape === 2) {
    // Many metadata instructions.
    const lines = ['FROM scratch'];
    for (let i = 0; i < 3000; i++) lines.push(`${r.pick(['LABEL', 'ENV'])} k${i}=v${i}`);
    return `${lines.join('\n')}\n`;
  }
  const lines: string[] = [];
  if (r.chance(0.2)) lines.push(r.pick(['# escape=`', '# escape=\\', '# escape=x', '# syntax=docker/dockerfile:1', '#check=error=true']));
  for (let i = r.int(3); i > 0; i--) lines.push(`ARG ${r.pick(variables)}=${r.pick(['scratch', 'a', word(r)])}`);
  const stages: string[] = [];
  const valid = r.chance(0.3);
  for (let s = 1 + r.int(4); s > 0; s--) {
    if (valid) {
      const name = `v${stages.length}`;
      lines.push(`FROM ${r.pick(['scratch', 'base', 'base', ...stages])} AS ${name}`);
      stages.push(name);
      for (let i = r.int(8); i > 0; i--) lines.push(validInstruction(r, stages.slice(0, -1)));
      continue;
    }
    const name = r.chance(0.6) ? r.pick([...contextNames, `s${stages.length}`, 'Bad-Name', '1st', word(r)]) : undefined;
    lines.push(`FROM ${r.chance(0.2) ? flag(r, ['platform']) + ' ' : ''}${ref(r, stages)}${name !== undefined ? ` ${r.pick(['AS', 'as', 'AS AS'])} ${name}` : ''}`);
    if (name !== undefined) stages.push(name);
    for (let i = r.int(8); i > 0; i--) lines.push(instruction(r, stages));
  }
  if (r.chance(0.1)) lines.push('x'.repeat(200_000));
  if (r.chance(0.05)) lines.splice(r.int(lines.length), 0, '\0\0\0');
  return `${lines.join(r.chance(0.1) ? '\r\n' : '\n')}${r.chance(0.8) ? '\n' : ''}`;
}
