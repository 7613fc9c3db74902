/**
 * The RUN conformance Dockerfile every isolation backend must build identically: deletions of base
 * files and directories, directory/file replacements, hardlinks within and across layers, symlinks,
 * setuid and sticky bits, arbitrary owners, a FIFO, a 1 GiB sparse file, exec form and heredoc.
 * `conformanceCommands` are the same steps as plain shell commands, for an independent reference run.
 */
export const conformanceCommands: readonly string[] = [
  'rm /etc/group && rm -rf /home && mkdir -p /d/sub && echo one > /d/sub/f && echo two > /f && ln /f /f-link && ln /bin/busybox /bb-hardlink',
  'rm -rf /d && echo now-a-file > /d && rm /f && mkdir -p /f/inner && ln /f-link /f-link2 && rm -rf /tmp && mkdir /tmp && chmod 1777 /tmp',
  'ln -s /etc/passwd /abs-link && ln -s ../etc/passwd /usr/rel-link && ln -s /nowhere /dangling && echo s > /suid && chown 4242:4343 /suid && chmod 4755 /suid && mkdir /sticky && chmod 1777 /sticky && mkfifo /fifo && truncate -s 1G /sparse',
  'echo exec-form > /exec',
  'echo heredoc > /heredoc',
];

export const conformanceDockerfile = [
  'FROM busybox',
  `RUN ${conformanceCommands[0]}`,
  `RUN ${conformanceCommands[1]}`,
  `RUN ${conformanceCommands[2]}`,
  `RUN ["/bin/sh", "-c", "${conformanceCommands[3]}"]`,
  'RUN <<EOF',
  conformanceCommands[4],
  'EOF',
  '',
].join('\n');
