import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { SourceError } from '../../../layers/errors.js';
import { dumpDockerfile, dumpSyntax } from '../../../builder/frontend/dump.js';
import { parseDockerfile, parseSyntaxTree } from '../../../builder/frontend/parse.js';
import { goQuote, goQuoteList } from '../../../builder/frontend/parse-quote.js';
import { repoRoot } from '../../support/repo-root.js';

const goldenDir = join(repoRoot(), 'test/fixtures/buildkit-parser/testfiles');
const goldenCases = readdirSync(goldenDir).sort();

/**
 * Golden files that BuildKit's parser accepts but its instruction layer rejects, with the
 * message our instruction layer must give for them.
 */
const REJECTED_AS_INSTRUCTIONS: Readonly<Record<string, string>> = {
  flags: 'Dockerfile:3: unknown flag: --user',
  health: 'Dockerfile:4: HEALTHCHECK requires at least one argument',
  json: 'Dockerfile:1: no build stage in current context',
  'jeztah-invalid-json-json-inside-string': 'Dockerfile:1: no build stage in current context',
  'jeztah-invalid-json-json-inside-string-double': 'Dockerfile:1: no build stage in current context',
  'jeztah-invalid-json-single-quotes': 'Dockerfile:1: no build stage in current context',
  'jeztah-invalid-json-unterminated-bracket': 'Dockerfile:1: no build stage in current context',
  'jeztah-invalid-json-unterminated-string': 'Dockerfile:1: no build stage in current context',
};

function golden(name: string): { dockerfile: string; result: string } {
  return {
    dockerfile: readFileSync(join(goldenDir, name, 'Dockerfile'), 'utf8'),
    result: readFileSync(join(goldenDir, name, 'result'), 'utf8'),
  };
}

describe('syntax-tree dump of the BuildKit parser golden files', () => {
  it('has all 33 cases', () => {
    assert.equal(goldenCases.length, 33);
  });

  for (const name of goldenCases) {
    it(name, () => {
      const { dockerfile, result } = golden(name);
      assert.equal(`${dumpSyntax(parseSyntaxTree(dockerfile, 'Dockerfile').nodes)}\n`, result);

      const rejection = REJECTED_AS_INSTRUCTIONS[name];
      if (rejection === undefined) {
        assert.equal(`${dumpDockerfile(parseDockerfile(dockerfile, 'Dockerfile'))}\n`, result);
      } else {
        assert.throws(
          () => parseDockerfile(dockerfile, 'Dockerfile'),
          (err: unknown) => err instanceof SourceError && err.message === rejection,
        );
      }
    });
  }
});

describe('dump format', () => {
  it('prints ONBUILD with its trigger and the trigger flags nested', () => {
    const tree = parseSyntaxTree('FROM a\nONBUILD COPY --from=b x /y\nONBUILD\n', 'Dockerfile');
    assert.equal(dumpSyntax(tree.nodes), '(from "a")\n(onbuild (copy ["--from=b"] "x" "/y"))\n(onbuild)');
  });

  it('prints unknown instructions with one empty argument, as the reference does', () => {
    assert.equal(dumpSyntax(parseSyntaxTree('FOO bar baz\n', 'Dockerfile').nodes), '(foo "")');
  });

  it('lowercases keywords and keeps argument case', () => {
    assert.equal(dumpSyntax(parseSyntaxTree('from Alpine AS Build\n', 'Dockerfile').nodes), '(from "Alpine" "AS" "Build")');
  });
});

describe('Go quoting', () => {
  it('escapes quotes, backslashes and the named control characters', () => {
    assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(goQuote('\x07\b\f\n\r\t\v'), '"\\a\\b\\f\\n\\r\\t\\v"');
  });

  it('uses \\x for other ASCII control characters and DEL', () => {
    assert.equal(goQuote('\x00\x1b\x7f'), '"\\x00\\x1b\\x7f"');
  });

  it('keeps printable Unicode and escapes non-printable code points by size', () => {
    assert.equal(goQuote('♥ 한국어 😀'), '"♥ 한국어 😀"');
    assert.equal(goQuote('\u00a0\u0085\u200b'), '"\\u00a0\\u0085\\u200b"');
    assert.equal(goQuote('\u{e0001}'), '"\\U000e0001"');
  });

  it('prints string lists like %q', () => {
    assert.equal(goQuoteList(['--a=1', 'b c']), '["--a=1" "b c"]');
    assert.equal(goQuoteList([]), '[]');
  });
});
