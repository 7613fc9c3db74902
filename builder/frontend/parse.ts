/**
 * Dockerfile text → typed instructions, following BuildKit's parser and instruction rules.
 * Words are not expanded here; the plan builder does that with the shell lexer.
 */
import type { Instruction, ParsedDockerfile } from './instructions.js';
import { ParseFailure } from './parse-failure.js';
import { toInstruction } from './parse-instruction.js';
import { atLine, parseSyntaxTree } from './parse-tree.js';

export { parseSyntaxTree };

/** Throws `SourceError` for anything BuildKit rejects when parsing (not when building). */
export function parseDockerfile(text: string, fileName: string): ParsedDockerfile {
  const tree = parseSyntaxTree(text, fileName);
  const instructions: Instruction[] = [];
  let inStage = false;
  for (const node of tree.nodes) {
    const instruction = atLine(fileName, node.startLine, () => {
      const converted = toInstruction(node, fileName);
      // Only ARG may come before the first FROM (it then declares a global build argument).
      if (!inStage && converted.kind !== 'ARG' && converted.kind !== 'FROM') {
        throw new ParseFailure('no build stage in current context');
      }
      return converted;
    });
    inStage ||= instruction.kind === 'FROM';
    instructions.push(deepFreeze(instruction));
  }
  return Object.freeze({
    directives: tree.directives,
    escapeToken: tree.escapeToken,
    instructions: Object.freeze(instructions),
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
