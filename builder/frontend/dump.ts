/**
 * Prints syntax nodes in BuildKit's syntax-tree dump format (its parser test `result` files):
 * one instruction per line, e.g. `(copy ["--from=a"] "foo" "/tmp/")`.
 */
import type { ParsedDockerfile, SyntaxNode } from './instructions.js';
import { goQuote, goQuoteList } from './parse-quote.js';

/** One line per node, no trailing newline. */
export function dumpSyntax(nodes: readonly SyntaxNode[]): string {
  return nodes.map((node) => `(${dumpNode(node)})`).join('\n');
}

export function dumpDockerfile(parsed: ParsedDockerfile): string {
  return dumpSyntax(parsed.instructions.map((instruction) => instruction.node));
}

function dumpNode(node: SyntaxNode): string {
  let out = node.keyword.toLowerCase();
  if (node.flags.length > 0) out += ` ${goQuoteList(node.flags)}`;
  if (node.subcommand !== undefined) out += ` (${dumpNode(node.subcommand)})`;
  for (const arg of node.args) out += ` ${goQuote(arg)}`;
  return out;
}
