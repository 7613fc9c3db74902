/** The import graph of the project's own TypeScript sources (not dist), read with the compiler's own pre-parser. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export interface SourceFile {
  /** Repository-relative, with `/` separators. */
  readonly path: string;
  readonly lines: number;
  /** Repository-relative paths of the project files it imports (static, dynamic, type-only and re-exports). */
  readonly imports: readonly string[];
}

/** Every `.ts` file under `dirs` of `root`, with the project files each imports. */
export function readSources(root: string, dirs: readonly string[]): Map<string, SourceFile> {
  const files = new Map<string, SourceFile>();
  for (const dir of dirs) {
    for (const file of tsFiles(path.join(root, dir))) {
      const text = readFileSync(file, 'utf8');
      const rel = path.relative(root, file).split(path.sep).join('/');
      const specifiers = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
      const imports = specifiers.filter((s) => s.startsWith('.')).map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(rel), s)).replace(/\.js$/, '.ts'));
      files.set(rel, { path: rel, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0), imports: [...new Set(imports)] });
    }
  }
  return files;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/** The import cycles among `files`: strongly connected components of more than one file, or a file importing itself (Tarjan). */
export function importCycles(files: ReadonlyMap<string, SourceFile>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, index.size);
    low.set(file, index.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const next of files.get(file)!.imports) {
      if (!files.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file)!, index.get(next)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || files.get(file)!.imports.includes(file)) cycles.push(component.sort());
  };
  for (const file of files.keys()) if (!index.has(file)) visit(file);
  return cycles;
}
