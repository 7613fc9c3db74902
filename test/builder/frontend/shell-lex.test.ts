import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ShellLex, type Environment } from '../../../builder/frontend/shell-lex.js';
import { TsbuildError } from '../../../layers/errors.js';
import { repoRoot } from '../../support/repo-root.js';

const fixtures = join(repoRoot(), 'test', 'fixtures', 'buildkit-shell');

/** Lines of a fixture file, without the empty string after the final newline. */
function readLines(name: string): string[] {
  return readFileSync(join(fixtures, name), 'utf8').replace(/\n$/, '').split('\n');
}

function env(entries: Record<string, string>): Environment {
  return new Map(Object.entries(entries));
}

function assertExpansionError(fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TsbuildError, `expected TsbuildError, got ${String(err)}`);
    assert.equal(err.code, 'EXPANSION');
    assert.ok(!err.message.includes('\n'), 'message must be one line');
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('envVarTest (BuildKit conformance, Unix)', () => {
  const lex = new ShellLex('\\');
  const environment = env({ PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' });
  readLines('envVarTest').forEach((line, index) => {
    if (line.startsWith('#') || line.trim() === '') return;
    const fields = line.trim().split('|');
    assert.equal(fields.length, 3, `malformed line ${index + 1}`);
    const [platform, source, expected] = fields.map((f) => f.trim()) as [string, string, string];
    assert.ok(['A', 'U', 'W'].includes(platform), `bad platform on line ${index + 1}`);
    if (platform === 'W') return;
    test(`line ${index + 1}: ${source}`, () => {
      if (expected === 'error') {
        assertExpansionError(() => lex.processWord(source, environment));
      } else {
        assert.equal(lex.processWord(source, environment), expected);
      }
    });
  });
});

describe('wordsTest (BuildKit conformance)', () => {
  const lex = new ShellLex('\\');
  const variables = new Map<string, string>();
  readLines('wordsTest').forEach((line, index) => {
    if (line.startsWith('#')) return;
    if (line.startsWith('ENV ')) {
      const assignment = line.slice(3).replace(/^ +/, '');
      const eq = assignment.indexOf('=');
      variables.set(assignment.slice(0, eq), assignment.slice(eq + 1));
      return;
    }
    const fields = line.split('|');
    assert.equal(fields.length, 2, `malformed line ${index + 1}`);
    const source = fields[0]!.trim();
    const expected = fields[1]!.replace(/^ +/, '').split(',');
    const snapshot: Environment = new Map(variables);
    test(`line ${index + 1}: ${source}`, () => {
      if (expected.length === 1 && expected[0] === 'error') {
        assertExpansionError(() => lex.processWords(source, snapshot));
      } else {
        assert.deepEqual(lex.processWords(source, snapshot), expected);
      }
    });
  });
});

describe('processWordWithMatches', () => {
  const lex = new ShellLex();

  test('reports set and unset variables separately', () => {
    const r = lex.processWordWithMatches('${A:-a}-${B-b}-${C+c}-$D', env({ A: '', B: 'bee' }));
    assert.equal(r.result, 'a-bee--');
    assert.deepEqual([...r.matched].sort(), ['A', 'B']);
    assert.deepEqual([...r.unmatched].sort(), ['C', 'D']);
  });

  test('counts names used inside nested words and patterns', () => {
    const r = lex.processWordWithMatches('${OUTER:-${INNER}}${V#$PREFIX}', env({ INNER: 'in', V: 'v1.2', PREFIX: 'v' }));
    assert.equal(r.result, 'in1.2');
    assert.deepEqual([...r.matched].sort(), ['INNER', 'PREFIX', 'V']);
    assert.deepEqual([...r.unmatched], ['OUTER']);
  });

  test('a word without variables matches nothing', () => {
    const r = lex.processWordWithMatches('"plain" text', env({ X: 'x' }));
    assert.equal(r.result, 'plain text');
    assert.equal(r.matched.size, 0);
    assert.equal(r.unmatched.size, 0);
  });

  test('optional suffix from a platform variable', () => {
    const word = 'tool-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tgz';
    const base = { VERSION: '2.0', TARGETOS: 'linux' };
    assert.equal(lex.processWord(word, env({ ...base, TARGETARCH: 'arm', TARGETVARIANT: 'v6' })), 'tool-2.0.linux-arm-v6.tgz');
    assert.equal(lex.processWord(word, env({ ...base, TARGETARCH: 'amd64', TARGETVARIANT: '' })), 'tool-2.0.linux-amd64.tgz');
    assert.equal(lex.processWord(word, env({ ...base, TARGETARCH: 'riscv64' })), 'tool-2.0.linux-riscv64.tgz');
  });
});

describe('required variables', () => {
  const lex = new ShellLex();
  const word = '${NEED:?please set $WHAT}';

  test('a set value passes through', () => {
    assert.equal(lex.processWord(word, env({ NEED: 'ok', WHAT: 'it' })), 'ok');
    assert.equal(lex.processWord('${NEED?}', env({ NEED: '' })), '');
  });

  test('the message is expanded and names the variable', () => {
    assertExpansionError(() => lex.processWord(word, env({ WHAT: 'NEED' })), /NEED: please set NEED/);
    assertExpansionError(() => lex.processWord(word, env({ NEED: '', WHAT: 'it' })), /NEED: please set it/);
  });

  test('default messages distinguish unset from empty', () => {
    assertExpansionError(() => lex.processWord('${NEED?}', env({})), /NEED: is not allowed to be unset/);
    assertExpansionError(() => lex.processWord('${NEED:?}', env({ NEED: '' })), /NEED: is not allowed to be empty/);
  });
});

describe('pattern modifiers', () => {
  const lex = new ShellLex();
  const path = env({ P: 'dir/sub/file.tar.gz', E: '' });

  test('# and ## remove the shortest and longest prefix', () => {
    assert.equal(lex.processWord('${P#*/}', path), 'sub/file.tar.gz');
    assert.equal(lex.processWord('${P##*/}', path), 'file.tar.gz');
    assert.equal(lex.processWord('${P#nomatch}', path), 'dir/sub/file.tar.gz');
    assert.equal(lex.processWord('${P#}', path), 'dir/sub/file.tar.gz');
  });

  test('% and %% remove the shortest and longest suffix', () => {
    assert.equal(lex.processWord('${P%.*}', path), 'dir/sub/file.tar');
    assert.equal(lex.processWord('${P%%.*}', path), 'dir/sub/file');
    assert.equal(lex.processWord('${P%/*}', path), 'dir/sub');
    assert.equal(lex.processWord('${P%%/*}', path), 'dir');
  });

  test('? matches one character and escapes make wildcards literal', () => {
    assert.equal(lex.processWord('${X#??}', env({ X: 'abcd' })), 'cd');
    assert.equal(lex.processWord('${X#\\*}', env({ X: '*ab*' })), 'ab*');
    assert.equal(lex.processWord('${X%\\**}', env({ X: 'ab*cd*ef' })), 'ab*cd');
    assert.equal(lex.processWord('${X%%\\**}', env({ X: 'ab*cd*ef' })), 'ab');
    assert.equal(lex.processWord('${X#a\\}b}', env({ X: 'a}bc' })), 'c');
  });

  test('regular-expression characters in a pattern are literal', () => {
    assert.equal(lex.processWord('${X#(a|b).[x]+$^}', env({ X: '(a|b).[x]+$^rest' })), 'rest');
  });

  test('multi-byte characters are single characters', () => {
    assert.equal(lex.processWord('${X%?}', env({ X: '한국어' })), '한국');
    assert.equal(lex.processWord('${X#?}', env({ X: '🚀ab' })), 'ab');
  });

  test('unset variables expand to empty', () => {
    assert.equal(lex.processWord('[${NOPE%%*}]', path), '[]');
    assert.equal(lex.processWord('[${E#x}]', path), '[]');
  });

  test('an invalid escape in a pattern is an error', () => {
    assertExpansionError(() => lex.processWord('${P#\\x}', path), /invalid escape/);
    assertExpansionError(() => lex.processWord('${P%a\\}', path), /missing '\}'/);
  });

  test('colon forms of # and % are not supported', () => {
    assertExpansionError(() => lex.processWord('${P:#x}', path), /unsupported modifier \(:#\)/);
    assertExpansionError(() => lex.processWord('${P:%x}', path), /unsupported modifier \(:%\)/);
  });

  test('/ replaces the first match and // every match', () => {
    const urls = env({ U: 'http://a/http://b', FROM: 'http', TO: 'https' });
    assert.equal(lex.processWord('${U/$FROM/$TO}', urls), 'https://a/http://b');
    assert.equal(lex.processWord('${U//$FROM/$TO}', urls), 'https://a/https://b');
    assert.equal(lex.processWord('${U//\\//_}', urls), 'http:__a_http:__b');
    assert.equal(lex.processWord('${U/nothing/x}', urls), 'http://a/http://b');
    assert.equal(lex.processWord('${U//a/}', urls), 'http:///http://b');
  });

  test('// with patterns that can match empty text', () => {
    assert.equal(lex.processWord('${X//*/y}', env({ X: 'abc' })), 'y');
    assert.equal(lex.processWord('${X//$E/-}', env({ X: 'ab', E: '' })), '-a-b-');
    assert.equal(lex.processWord('${X/$E/-}', env({ X: 'ab', E: '' })), '-ab');
  });

  test('// treats $0 in the replacement as the match', () => {
    assert.equal(lex.processWord("${X//b/'<$0>'}", env({ X: 'abcb' })), 'a<b>c<b>');
    assert.equal(lex.processWord("${X//b/'$$'}", env({ X: 'ab' })), 'a$');
  });

  test('a replacement without its delimiters is an error', () => {
    assertExpansionError(() => lex.processWord('${P//x}', path), /missing '\/'/);
    assertExpansionError(() => lex.processWord('${P/x/y', path), /missing '\}'/);
  });
});

describe('error messages', () => {
  const lex = new ShellLex();

  test('name the word and the problem on one line', () => {
    assertExpansionError(() => lex.processWord('he${PWD', env({})), /^failed to process "he\$\{PWD": syntax error: missing '\}'$/);
    assertExpansionError(() => lex.processWord('a\n${}', env({})), /^failed to process "a\\n\$\{\}": syntax error: bad substitution$/);
    assertExpansionError(() => lex.processWord('${X=1}', env({})), /unsupported modifier \(=\)/);
    assertExpansionError(() => lex.processWord("'open", env({})), /matching single-quote/);
    assertExpansionError(() => lex.processWord('"open', env({})), /matching double-quote/);
  });
});

describe('word splitting', () => {
  const lex = new ShellLex();

  test('only Unicode white space from values splits words', () => {
    assert.deepEqual(lex.processWords('$X', env({ X: 'a\u00a0b\tc\u2003d' })), ['a', 'b', 'c', 'd']);
    assert.deepEqual(lex.processWords('$X', env({ X: 'a\ufeffb' })), ['a\ufeffb']);
  });

  test('text before a default value is kept with it', () => {
    assert.deepEqual(lex.processWords('pre${X:-a b}post', env({})), ['prea', 'bpost']);
  });

  test('empty quotes produce no word', () => {
    assert.deepEqual(lex.processWords('a "" b', env({})), ['a', 'b']);
  });

  test('a heredoc marker stays one word with its spaces', () => {
    assert.deepEqual(lex.processWords('cat << EOF', env({})), ['cat', '<< EOF']);
    assert.deepEqual(lex.processWords('a<b', env({})), ['a<b']);
  });

  test('a leading byte order mark is dropped', () => {
    assert.equal(lex.processWord('\ufeff$X', env({ X: 'x' })), 'x');
  });
});

describe('backtick escape token', () => {
  const lex = new ShellLex('`');
  const environment = env({ PWD: '/home' });

  test('backtick escapes outside quotes', () => {
    assert.equal(lex.processWord('he`$PWD', environment), 'he$PWD');
    assert.equal(lex.processWord("it`'s", environment), "it's");
    assert.deepEqual(lex.processWords('hello` there x', environment), ['hello there', 'x']);
  });

  test('backslash is an ordinary character', () => {
    assert.equal(lex.processWord('C:\\dir\\$PWD', environment), 'C:\\dir\\/home');
    assert.equal(lex.processWord('"C:\\dir\\"', environment), 'C:\\dir\\');
  });

  test('inside double quotes backtick escapes ", $ and itself only', () => {
    assert.equal(lex.processWord('"a`"b`$PWD``c`t"', environment), 'a"b$PWD`c`t');
  });

  test('a trailing backtick is dropped and a doubled one is literal', () => {
    assert.equal(lex.processWord('abc`', environment), 'abc');
    assert.equal(lex.processWord('abc``', environment), 'abc`');
  });

  test('backtick protects } inside a default value', () => {
    assert.equal(lex.processWord('${X:-a`}b}', environment), 'a}b');
  });
});

describe('options', () => {
  const environment = env({ SET: 'v' });

  test('rawQuotes keeps quote characters', () => {
    const lex = new ShellLex('\\', { rawQuotes: true });
    assert.equal(lex.processWord(`"$SET" 'x'`, environment), `"v" 'x'`);
    assert.deepEqual(lex.processWords(`a"b c"`, environment), ['a"b c"']);
  });

  test('rawEscapes keeps escape characters', () => {
    const lex = new ShellLex('\\', { rawEscapes: true });
    assert.equal(lex.processWord('a\\ b\\$SET', environment), 'a\\ b\\$SET');
    assert.equal(lex.processWord('"\\$SET"', environment), '\\$SET');
    assert.equal(lex.processWord('"\\t"', environment), '\\\\t');
  });

  test('skipUnsetEnv leaves references to unset variables', () => {
    const lex = new ShellLex('\\', { skipUnsetEnv: true });
    assert.equal(lex.processWord('$SET $NO ${NO} ${NO:-d} ${NO#p} ${NO//a/b}', environment), 'v $NO ${NO} ${NO:-d} ${NO#p} ${NO//a/b}');
  });

  test('skipProcessQuotes treats quotes as text', () => {
    const lex = new ShellLex('\\', { skipProcessQuotes: true });
    assert.equal(lex.processWord(`"$SET" '$SET`, environment), `"v" 'v`);
  });
});
