/**
 * The RUN conformance Dockerfile every isolation backend must build identically: deletions of base
 * files and directories, directory/file replacements, hardlinks within and across layers, symlinks,
 * setuid and sticky bits, arbitrary owners, a FIFO, a 1 GiB sparse file, exec form and heredoc.
 * The commands are the same steps as plain shell commands, for an independent reference run.
 */
export function conformanceCommandsFor(baseFile: string): string[] {
  return [
    `rm /etc/group && rm -rf /home && mkdir -p /d/sub && echo one > /d/sub/f && echo two > /f && ln /f /f-link && ln ${baseFile} /base-hardlink`,
    'rm -rf /d && echo now-a-file > /d && rm /f && mkdir -p /f/inner && ln /f-link /f-link2 && rm -rf /tmp && mkdir /tmp && chmod 1777 /tmp',
    'ln -s /etc/passwd /abs-link && ln -s ../etc/passwd /usr/rel-link && ln -s /nowhere /dangling && echo s > /suid && chown 4242:4343 /suid && chmod 4755 /suid && mkdir /sticky && chmod 1777 /sticky && mkfifo /fifo && truncate -s 1G /sparse',
    'echo exec-form > /exec',
    'echo heredoc > /heredoc',
  ];
}

/** The Dockerfile running `commands` (from `conformanceCommandsFor`) on `base`. */
export function conformanceDockerfileFor(base: string, commands: readonly string[]): string {
  return [
    `FROM ${base}`,
    `RUN ${commands[0]}`,
    `RUN ${commands[1]}`,
    `RUN ${commands[2]}`,
    `RUN ["/bin/sh", "-c", "${commands[3]}"]`,
    'RUN <<EOF',
    commands[4],
    'EOF',
    '',
  ].join('\n');
}

/** The conformance steps on the busybox fixture. */
export const conformanceCommands: readonly string[] = conformanceCommandsFor('/bin/busybox');
export const conformanceDockerfile = conformanceDockerfileFor('busybox', conformanceCommands);
