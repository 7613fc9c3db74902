/**
 * Turns one logical line into a syntax node: keyword, flags, and arguments split the way each
 * instruction's line parser in the reference splits them. Unknown keywords still make a node
 * (with one empty argument); the instruction layer rejects them.
 */
import type { Heredoc } from '../model/dockerfile.js';
import { ARGUMENT_SEPARATOR, isSpace, splitOnce, trimLeftSpace } from './parse-chars.js';
import { ParseFailure } from './parse-failure.js';
import { goQuote } from './parse-quote.js';
import { parseWords, splitCommand } from './parse-words.js';

/** A syntax node still being built: heredocs and lines are filled in by the scanner. */
export interface NodeDraft {
  keyword: string;
  flags: string[];
  args: string[];
  subcommand?: NodeDraft;
  json: boolean;
  heredocs: Heredoc[];
  original: string;
  comments: string[];
}

interface LineArgs {
  args: string[];
  json?: boolean;
  subcommand?: NodeDraft;
}

type LineParser = (rest: string, escape: string) => LineArgs;

const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

export function buildNode(line: string, escape: string, comments: string[]): NodeDraft {
  const { keyword, flags, rest } = splitCommand(line, escape);
  const parse = LINE_PARSERS.get(keyword.toLowerCase()) ?? parseUnknown;
  const { args, json = false, subcommand } = parse(rest, escape);
  const node: NodeDraft = { keyword, flags, args, json, heredocs: [], original: line, comments };
  if (subcommand !== undefined) node.subcommand = subcommand;
  return node;
}

/** RUN, COPY and ADD in shell form may carry heredocs, also as an ONBUILD trigger. */
export function canContainHeredoc(node: NodeDraft): boolean {
  const target = node.keyword.toLowerCase() === 'onbuild' && node.subcommand ? node.subcommand : node;
  return ['add', 'copy', 'run'].includes(target.keyword.toLowerCase()) && !target.json;
}

/** A JSON array of strings, or undefined when `rest` is not valid JSON or not an array. */
function parseJSONArray(rest: string): string[] | undefined {
  const text = trimLeftSpace(rest);
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((item): item is string => typeof item === 'string')) throw new ParseFailure(NOT_STRING_ARRAY);
  return value;
}

/** Unknown keywords keep no arguments but one empty word, which is how the reference dumps them. */
const parseUnknown: LineParser = () => ({ args: [''] });

/** JSON array, or the whole text as one shell-form argument. */
function parseMaybeJSON(rest: string): LineArgs {
  if (rest === '') return { args: [] };
  const array = parseJSONArray(rest);
  return array === undefined ? { args: [rest] } : { args: array, json: true };
}

/** JSON array, or whitespace-separated words (quotes not honoured). */
function parseMaybeJSONToList(rest: string): LineArgs {
  const array = parseJSONArray(rest);
  return array === undefined ? parseWhitespaceDelimited(rest) : { args: array, json: true };
}

function parseWhitespaceDelimited(rest: string): LineArgs {
  return { args: rest === '' ? [] : rest.split(ARGUMENT_SEPARATOR) };
}

function parseString(rest: string): LineArgs {
  return { args: rest === '' ? [] : [rest] };
}

/**
 * ENV and LABEL: `KEY value` (legacy: everything after the first blank is the value) or
 * `k=v k2=v2 ...`. Each pair becomes three arguments: key, value, and `=` or `` for legacy.
 */
function parseNameValue(keyword: string): LineParser {
  return (rest, escape) => {
    const words = parseWords(rest, escape);
    const first = words[0];
    if (first === undefined) return { args: [] };
    if (!first.includes('=')) {
      const [key, value] = splitOnce(rest);
      if (value === undefined) throw new ParseFailure(`${keyword} must have two arguments`);
      return { args: [key, value, ''] };
    }
    const args: string[] = [];
    for (const word of words) {
      const eq = word.indexOf('=');
      if (eq < 0) {
        throw new ParseFailure(`Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`);
      }
      args.push(word.slice(0, eq), word.slice(eq + 1), '=');
    }
    return { args };
  };
}

/** HEALTHCHECK: the type word (`CMD`, `NONE`, ...) then the command as for CMD. */
function parseHealthConfig(rest: string): LineArgs {
  let sep = 0;
  while (sep < rest.length && !isSpace(rest.charAt(sep))) sep++;
  if (sep === 0) return { args: [] };
  let next = sep;
  while (next < rest.length && isSpace(rest.charAt(next))) next++;
  const command = parseMaybeJSON(rest.slice(next));
  return { ...command, args: [rest.slice(0, sep), ...command.args] };
}

/** ONBUILD: the rest is a whole instruction line of its own. */
function parseSubCommand(rest: string, escape: string): LineArgs {
  if (rest === '') return { args: [] };
  return { args: [], subcommand: buildNode(rest, escape, []) };
}

const LINE_PARSERS: ReadonlyMap<string, LineParser> = new Map<string, LineParser>(Object.entries({
  add: parseMaybeJSONToList,
  arg: (rest, escape) => ({ args: parseWords(rest, escape) }),
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: parseNameValue('ENV'),
  expose: parseWhitespaceDelimited,
  from: parseWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: parseNameValue('LABEL'),
  maintainer: parseString,
  onbuild: parseSubCommand,
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
}));
