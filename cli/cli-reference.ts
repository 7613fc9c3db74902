import { kanikoOptions, kanikoRefused } from './kaniko-flags.js';
import { buildOptions, planOptions, pruneOptions, pullOptions } from './options.js';

/** A yargs option definition, as far as the reference shows it. */
interface OptionView {
  readonly alias?: string;
  readonly type?: string;
  readonly array?: boolean;
  readonly choices?: readonly string[];
  readonly default?: unknown;
  readonly describe?: string;
  readonly tsbuild?: string;
}

interface CommandView {
  readonly usage: string;
  readonly summary: string;
  readonly options: Readonly<Record<string, OptionView>>;
}

const commands: readonly CommandView[] = [
  { usage: 'tsbuild [build] [CONTEXT]', summary: 'Builds an image from a Dockerfile (CONTEXT defaults to `.`).', options: buildOptions },
  { usage: 'tsbuild plan [CONTEXT]', summary: 'Prints the build plan as JSON without building.', options: planOptions },
  { usage: 'tsbuild pull REFERENCE', summary: 'Pulls an image into the local image cache ahead of a build.', options: pullOptions },
  { usage: 'tsbuild prune', summary: 'Empties the build cache and the RUN cache mounts no build is using.', options: pruneOptions },
  { usage: 'tsbuild images', summary: 'Lists the images in the local store.', options: {} },
  { usage: 'tsbuild inspect NAME', summary: 'Prints the manifest and config of an image in the local store.', options: {} },
  { usage: 'tsbuild executor', summary: "Builds as kaniko's executor does, from its flags: see [kaniko](#kaniko).", options: kanikoOptions },
];

/** buildx flags tsbuild has no flag for, and what to do instead; every other buildx flag is tsbuild's too. */
const buildxOnly: Readonly<Record<string, string>> = {
  allow: 'no: entitlements (network.host, security.insecure) are not granted; RUN --network=host is always allowed',
  annotation: 'not yet',
  attest: 'not yet',
  builder: 'no: there is no builder instance, tsbuild builds in its own process',
  call: 'no: `tsbuild plan` prints the plan',
  check: 'no',
  'cgroup-parent': 'no',
  load: 'use `--output type=docker,dest=FILE` and `docker load`',
  provenance: 'not yet',
  sbom: 'not yet',
  'shm-size': 'no',
  ulimit: 'no',
};

const buildxFlags = [
  'add-host', 'allow', 'annotation', 'attest', 'build-arg', 'build-context', 'builder', 'cache-from', 'cache-to', 'call', 'cgroup-parent', 'check', 'file',
  'iidfile', 'label', 'load', 'metadata-file', 'network', 'no-cache', 'no-cache-filter', 'output', 'platform', 'progress', 'provenance', 'pull', 'push',
  'quiet', 'sbom', 'secret', 'shm-size', 'ssh', 'tag', 'target', 'ulimit',
];

/** The CLI reference in Markdown (docs/cli.md), generated from the option tables the parser uses. */
export function cliReference(): string {
  const lines = [
    '# tsbuild command-line reference',
    '',
    '<!-- Generated from cli/options.ts and cli/kaniko-flags.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'Every command also takes `--help`; `tsbuild --version` (or `-V`) prints the version.',
    '',
  ];
  for (const command of commands) {
    lines.push(`## \`${command.usage}\``, '', command.summary, '');
    const entries = Object.entries(command.options);
    if (entries.length === 0) continue;
    lines.push('| Flag | Value | Default | Description |', '| --- | --- | --- | --- |');
    for (const [name, option] of entries) lines.push(`| ${flagCell(name, option)} | ${valueCell(option)} | ${defaultCell(option)} | ${cell(option.describe ?? '')} |`);
    lines.push('');
  }
  lines.push('## Compatibility', '', '### buildx', '', '`docker buildx build` flags and their tsbuild counterparts.', '', '| buildx | tsbuild |', '| --- | --- |');
  for (const flag of buildxFlags) lines.push(`| \`--${flag}\` | ${flag in buildOptions ? `\`--${flag}\`` : cell(buildxOnly[flag] ?? 'no')} |`);
  lines.push('', '### kaniko', '', 'kaniko executor flags, as `tsbuild executor` takes them, and the tsbuild flag each becomes. A flag marked "refused" fails the command at once with the reason shown; a flag tsbuild does not know fails it too.', '', '| kaniko | tsbuild |', '| --- | --- |');
  for (const [name, option] of Object.entries(kanikoOptions as Readonly<Record<string, OptionView>>)) lines.push(`| ${flagCell(name, option)} | ${cell(option.tsbuild ?? '')} |`);
  for (const [name, reason] of Object.entries(kanikoRefused)) lines.push(`| \`--${name}\` | refused: ${cell(reason)} |`);
  return `${lines.join('\n')}\n`;
}

function flagCell(name: string, option: OptionView): string {
  return `\`--${name}\`${option.alias ? `, \`-${option.alias}\`` : ''}`;
}

function valueCell(option: OptionView): string {
  if (option.choices) return option.choices.map((c) => `\`${c}\``).join(', ');
  return `${option.type ?? ''}${option.array ? ', repeatable' : ''}`;
}

function defaultCell(option: OptionView): string {
  const value = option.default;
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return '';
  return `\`${String(value)}\``;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}
