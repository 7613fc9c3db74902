/**
 * Syntax node → typed instruction, with the argument and flag checks of BuildKit's
 * instruction parser. Words stay unexpanded.
 */
import type {
  AddInstruction,
  ArgDefinition,
  CommandLine,
  CopyInstruction,
  FromInstruction,
  HealthcheckInstruction,
  Instruction,
  KeyValuePair,
  OnbuildInstruction,
  OnbuildTrigger,
  RunInstruction,
  SyntaxNode,
} from './instructions.js';
import type { SourceContent, SourceLocation } from '../model/dockerfile.js';
import { trimSpace } from './parse-chars.js';
import { parseGoDuration } from './parse-duration.js';
import { ParseFailure } from './parse-failure.js';
import { parseFlags, type FlagKind, type ParsedFlags } from './parse-flags.js';
import { chompHeredocContent, parseHeredocMarker } from './parse-heredoc.js';
import { goQuote } from './parse-quote.js';
import { withSuggestion } from './parse-suggest.js';

/** What every converter gets: the node, its words, and the fields common to all instructions. */
interface Request {
  readonly node: SyntaxNode;
  readonly args: readonly string[];
  readonly base: { readonly location: SourceLocation; readonly original: string; readonly node: SyntaxNode };
  flags(accepted: Readonly<Record<string, FlagKind>>): ParsedFlags;
}

type Converter = (request: Request) => Instruction;

/** Converts one node; throws `ParseFailure` for anything BuildKit would reject. */
export function toInstruction(node: SyntaxNode, file: string): Instruction {
  const convert = CONVERTERS.get(node.keyword.toLowerCase());
  if (convert === undefined) {
    const message = `unknown instruction: ${node.keyword}`;
    throw new ParseFailure(withSuggestion(message, node.keyword, INSTRUCTION_NAMES, false));
  }
  const request: Request = {
    node,
    args: nodeArgs(node),
    base: {
      location: { file, startLine: node.startLine, endLine: node.endLine },
      original: trimSpace(node.original),
      node,
    },
    flags: (accepted) => parseFlags(node.flags, accepted),
  };
  return convert(request);
}

/** The node's words; for ONBUILD the trigger's keyword followed by its words. */
function nodeArgs(node: SyntaxNode): string[] {
  if (node.subcommand === undefined) return [...node.args];
  return [node.subcommand.keyword, ...nodeArgs(node.subcommand)];
}

const atLeastOne = (name: string): ParseFailure => new ParseFailure(`${name} requires at least one argument`);
const exactlyOne = (name: string): ParseFailure => new ParseFailure(`${name} requires exactly one argument`);
const NO_FLAGS: Readonly<Record<string, FlagKind>> = {};

/** Exec form keeps the JSON strings; shell form joins the words into one command string. */
function commandLine(words: readonly string[], json: boolean): CommandLine {
  if (json) return { args: [...words], prependShell: false };
  return { args: words.length === 0 ? [] : [words.join(' ')], prependShell: true };
}

/** ENV and LABEL pairs: the node holds key, value, delimiter triples. */
function keyValuePairs(request: Request, name: string): KeyValuePair[] {
  const { args } = request;
  if (args.length === 0) throw atLeastOne(name);
  if (args.length % 3 !== 0) throw new ParseFailure(`Bad input to ${name}, too many arguments`);
  const pairs: KeyValuePair[] = [];
  for (let i = 0; i < args.length; i += 3) {
    const [key = '', value = '', delimiter = ''] = args.slice(i, i + 3);
    if (key === '') throw new ParseFailure(`${name} names can not be blank`);
    pairs.push({ key, value, noDelim: delimiter === '' });
  }
  return pairs;
}

function singleWord(request: Request, name: string): string {
  if (request.args.length !== 1) throw exactlyOne(name);
  request.flags(NO_FLAGS);
  return request.args[0] ?? '';
}

/** COPY/ADD operands: the last word is the destination, heredoc words become inline sources. */
function sourcesAndDest(
  request: Request,
  name: string,
): { sources: string[]; sourceContents: SourceContent[]; dest: string } {
  const dest = request.args[request.args.length - 1] ?? '';
  if (parseHeredocMarker(dest) !== undefined) {
    throw new ParseFailure(`${name} cannot accept a heredoc as a destination`);
  }
  const sources: string[] = [];
  const sourceContents: SourceContent[] = [];
  for (const source of request.args.slice(0, -1)) {
    const marker = parseHeredocMarker(source);
    if (marker === undefined) {
      sources.push(source);
      continue;
    }
    // The last heredoc of that name wins, as with the reference's lookup table.
    const content = request.node.heredocs.filter((doc) => doc.name === marker.name).pop()?.content ?? '';
    sourceContents.push({
      path: marker.name,
      data: marker.chomp ? chompHeredocContent(content) : content,
      expand: marker.expand,
    });
  }
  return { sources, sourceContents, dest };
}

function requireDestination(request: Request, name: string): void {
  if (request.args.length < 2) {
    throw new ParseFailure(
      `${name} requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  }
}

const STAGE_NAME = /^[a-z][a-z0-9\-_.]*$/;

function parseFrom(request: Request): FromInstruction {
  const { args } = request;
  let stageName: string | undefined;
  if (args.length === 3 && args[1]?.toLowerCase() === 'as') {
    stageName = (args[2] ?? '').toLowerCase();
    if (!STAGE_NAME.test(stageName)) {
      const quoted = goQuote(args[2] ?? '');
      throw new ParseFailure(`invalid name for build stage: ${quoted}, name can't start with a number or contain symbols`);
    }
  } else if (args.length !== 1) {
    throw new ParseFailure('FROM requires either one or three arguments');
  }
  const flags = request.flags({ platform: 'string' });
  return {
    kind: 'FROM',
    ...request.base,
    image: args[0] ?? '',
    ...optional('stageName', stageName),
    ...optional('platform', flags.string('platform')),
  };
}

const NETWORK_MODES = ['default', 'none', 'host'] as const;
const SECURITY_MODES = ['sandbox', 'insecure'] as const;

function parseRun(request: Request): RunInstruction {
  const flags = request.flags({ mount: 'strings', network: 'string', security: 'string' });
  const network = flags.string('network') ?? 'default';
  if (!isOneOf(network, NETWORK_MODES)) throw new ParseFailure(`invalid network mode ${goQuote(network)}`);
  const security = flags.string('security') ?? 'sandbox';
  if (!isOneOf(security, SECURITY_MODES)) throw new ParseFailure(`security ${goQuote(security)} is not valid`);
  return {
    kind: 'RUN',
    ...request.base,
    command: commandLine(request.args, request.node.json),
    heredocs: request.node.heredocs,
    mounts: flags.strings('mount'),
    network,
    security,
  };
}

function parseAdd(request: Request): AddInstruction {
  requireDestination(request, 'ADD');
  const flags = request.flags({
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    'keep-git-dir': 'bool',
    checksum: 'string',
    unpack: 'bool',
    exclude: 'strings',
  });
  return {
    kind: 'ADD',
    ...request.base,
    ...sourcesAndDest(request, 'ADD'),
    ...optional('chown', flags.string('chown')),
    ...optional('chmod', flags.string('chmod')),
    link: flags.bool('link') ?? false,
    excludes: flags.strings('exclude'),
    ...optional('checksum', flags.string('checksum')),
    ...optional('keepGitDir', flags.bool('keep-git-dir')),
    ...optional('unpack', flags.bool('unpack')),
    heredocs: request.node.heredocs,
  };
}

function parseCopy(request: Request): CopyInstruction {
  requireDestination(request, 'COPY');
  const flags = request.flags({
    chown: 'string',
    from: 'string',
    chmod: 'string',
    link: 'bool',
    exclude: 'strings',
    parents: 'bool',
  });
  return {
    kind: 'COPY',
    ...request.base,
    ...sourcesAndDest(request, 'COPY'),
    ...optional('from', flags.string('from')),
    ...optional('chown', flags.string('chown')),
    ...optional('chmod', flags.string('chmod')),
    link: flags.bool('link') ?? false,
    parents: flags.bool('parents') ?? false,
    excludes: flags.strings('exclude'),
    heredocs: request.node.heredocs,
  };
}

/** The trigger is kept as text (for the image config) and parsed, so mistakes show up now. */
function parseOnbuild(request: Request): OnbuildInstruction {
  const { node } = request;
  if (request.args.length === 0 || node.subcommand === undefined) throw atLeastOne('ONBUILD');
  request.flags(NO_FLAGS);
  const trigger = trimSpace(request.args[0] ?? '').toUpperCase();
  if (trigger === 'ONBUILD') throw new ParseFailure('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') {
    throw new ParseFailure(`${trigger} isn't allowed as an ONBUILD trigger`);
  }
  let expression = node.original.replace(/^[\t\n\f\r ]*onbuild[\t\n\f\r ]*/i, '');
  for (const heredoc of node.heredocs) expression += `\n${heredoc.content}${heredoc.name}`;
  const triggerNode: SyntaxNode = { ...node.subcommand, heredocs: node.heredocs };
  return {
    kind: 'ONBUILD',
    ...request.base,
    expression,
    trigger: toInstruction(triggerNode, request.base.location.file) as OnbuildTrigger,
  };
}

/** `--interval` and friends: 0 when absent or zero, otherwise at least one millisecond. */
function interval(flags: ParsedFlags, name: string): number {
  const text = flags.string(name) ?? '';
  if (text === '') return 0;
  const nanoseconds = parseGoDuration(text);
  if (nanoseconds !== 0 && nanoseconds < 1_000_000) {
    throw new ParseFailure(`Interval ${goQuote(name)} cannot be less than 1ms`);
  }
  return nanoseconds;
}

function parseRetries(text: string): number {
  if (text === '') return 0;
  if (!/^[+-]?[0-9]+$/.test(text)) throw new ParseFailure(`strconv.ParseInt: parsing ${goQuote(text)}: invalid syntax`);
  const retries = Number(text);
  if (retries < -(2 ** 31) || retries > 2 ** 31 - 1) {
    throw new ParseFailure(`strconv.ParseInt: parsing ${goQuote(text)}: value out of range`);
  }
  if (retries < 0) throw new ParseFailure(`--retries cannot be negative (${retries})`);
  return retries;
}

const HEALTHCHECK_FLAGS: Readonly<Record<string, FlagKind>> = {
  interval: 'string',
  timeout: 'string',
  'start-period': 'string',
  'start-interval': 'string',
  retries: 'string',
};

function parseHealthcheck(request: Request): HealthcheckInstruction {
  if (request.args.length === 0) throw atLeastOne('HEALTHCHECK');
  const type = (request.args[0] ?? '').toUpperCase();
  const flags = request.flags(HEALTHCHECK_FLAGS);
  const unset = { interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (type === 'NONE') {
    if (request.args.length !== 1) throw new ParseFailure('HEALTHCHECK NONE takes no arguments');
    return { kind: 'HEALTHCHECK', ...request.base, health: { test: ['NONE'], ...unset } };
  }
  if (type !== 'CMD') throw new ParseFailure(`Unknown type ${goQuote(type)} in HEALTHCHECK (try CMD)`);
  const command = commandLine(request.args.slice(1), request.node.json);
  if (command.args.length === 0) throw new ParseFailure('Missing command after HEALTHCHECK CMD');
  return {
    kind: 'HEALTHCHECK',
    ...request.base,
    health: {
      test: [command.prependShell ? 'CMD-SHELL' : 'CMD', ...command.args],
      interval: interval(flags, 'interval'),
      timeout: interval(flags, 'timeout'),
      startPeriod: interval(flags, 'start-period'),
      startInterval: interval(flags, 'start-interval'),
      retries: parseRetries(flags.string('retries') ?? ''),
    },
  };
}

function parseArg(request: Request): Instruction {
  if (request.args.length === 0) throw atLeastOne('ARG');
  request.flags(NO_FLAGS);
  const args: ArgDefinition[] = request.args.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) return { key: word };
    if (eq === 0) throw new ParseFailure('ARG names can not be blank');
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
  return { kind: 'ARG', ...request.base, args };
}

function parseVolume(request: Request): Instruction {
  if (request.args.length === 0) throw atLeastOne('VOLUME');
  request.flags(NO_FLAGS);
  const volumes = request.args.map((volume) => {
    const trimmed = trimSpace(volume);
    if (trimmed === '') throw new ParseFailure('VOLUME specified can not be an empty string');
    return trimmed;
  });
  return { kind: 'VOLUME', ...request.base, volumes };
}

function parseShell(request: Request): Instruction {
  request.flags(NO_FLAGS);
  const { args } = commandLine(request.args, request.node.json);
  if (args.length === 0) throw atLeastOne('SHELL');
  if (!request.node.json) throw new ParseFailure('SHELL requires the arguments to be in JSON form');
  return { kind: 'SHELL', ...request.base, shell: args };
}

const CONVERTERS: ReadonlyMap<string, Converter> = new Map<string, Converter>(Object.entries({
  add: parseAdd,
  arg: parseArg,
  cmd: (request) => {
    request.flags(NO_FLAGS);
    return { kind: 'CMD', ...request.base, command: commandLine(request.args, request.node.json) };
  },
  copy: parseCopy,
  entrypoint: (request) => {
    request.flags(NO_FLAGS);
    return { kind: 'ENTRYPOINT', ...request.base, command: commandLine(request.args, request.node.json) };
  },
  env: (request) => {
    request.flags(NO_FLAGS);
    return { kind: 'ENV', ...request.base, env: keyValuePairs(request, 'ENV') };
  },
  expose: (request) => {
    if (request.args.length === 0) throw atLeastOne('EXPOSE');
    request.flags(NO_FLAGS);
    return { kind: 'EXPOSE', ...request.base, ports: [...request.args].sort() };
  },
  from: parseFrom,
  healthcheck: parseHealthcheck,
  label: (request) => {
    request.flags(NO_FLAGS);
    return { kind: 'LABEL', ...request.base, labels: keyValuePairs(request, 'LABEL') };
  },
  maintainer: (request) => ({ kind: 'MAINTAINER', ...request.base, maintainer: singleWord(request, 'MAINTAINER') }),
  onbuild: parseOnbuild,
  run: parseRun,
  shell: parseShell,
  stopsignal: (request) => ({ kind: 'STOPSIGNAL', ...request.base, signal: singleWord(request, 'STOPSIGNAL') }),
  user: (request) => ({ kind: 'USER', ...request.base, user: singleWord(request, 'USER') }),
  volume: parseVolume,
  workdir: (request) => ({ kind: 'WORKDIR', ...request.base, path: singleWord(request, 'WORKDIR') }),
}));

const INSTRUCTION_NAMES = [...CONVERTERS.keys()].map((name) => name.toUpperCase());

function isOneOf<T extends string>(value: string, allowed: readonly T[]): value is T {
  return (allowed as readonly string[]).includes(value);
}

/**
 * `{ [key]: value }`, or `{}` when the value is undefined or empty: an empty flag value means
 * "not set" in the reference, and optional fields stay absent.
 */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined || value === '' ? {} : ({ [key]: value } as { [P in K]?: V });
}
