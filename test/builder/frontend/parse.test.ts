import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { SourceError } from '../../../layers/errors.js';
import type { Instruction, InstructionKind } from '../../../builder/frontend/instructions.js';
import { parseDockerfile, parseSyntaxTree } from '../../../builder/frontend/parse.js';
import { parseGoDuration } from '../../../builder/frontend/parse-duration.js';
import { repoRoot } from '../../support/repo-root.js';

const fixtures = join(repoRoot(), 'test/fixtures/buildkit-parser');

function fixture(path: string): string {
  return readFileSync(join(fixtures, path), 'utf8');
}

/** Parses and returns the instruction of the given kind at `index` (default: the last one). */
function parseOne<K extends InstructionKind>(text: string, kind: K, index = -1): Extract<Instruction, { kind: K }> {
  const { instructions } = parseDockerfile(text, 'Dockerfile');
  const instruction = instructions.at(index);
  assert.equal(instruction?.kind, kind);
  return instruction as Extract<Instruction, { kind: K }>;
}

/** Asserts that parsing fails with a SourceError at `line` whose message is exactly `message`. */
function assertFails(text: string, line: number, message: string): void {
  assert.throws(
    () => parseDockerfile(text, 'Dockerfile'),
    (err: unknown) => {
      assert.ok(err instanceof SourceError, `expected a SourceError, got ${String(err)}`);
      assert.equal(err.file, 'Dockerfile');
      assert.equal(err.message, `Dockerfile:${line}: ${message}`);
      assert.equal(err.line, line);
      return true;
    },
  );
}

describe('BuildKit negative parser cases', () => {
  const expected: Readonly<Record<string, [number, string]>> = {
    empty_dockerfile: [1, 'file with no instructions'],
    env_no_value: [3, 'ENV must have two arguments'],
    only_comments: [3, 'file with no instructions'],
    'shykes-nested-json': [1, 'when using JSON array syntax, arrays must be comprised of strings only'],
  };

  it('covers every negative case', () => {
    assert.deepEqual(readdirSync(join(fixtures, 'testfiles-negative')).sort(), Object.keys(expected).sort());
  });

  for (const [name, [line, message]] of Object.entries(expected)) {
    it(name, () => assertFails(fixture(`testfiles-negative/${name}/Dockerfile`), line, message));
  }
});

describe('line numbers (testfile-line)', () => {
  it('gives every instruction its start and end line', () => {
    const expected = JSON.parse(fixture('testfile-line.expected.json')) as {
      children: { startLine: number; endLine: number; instruction: string }[];
    };
    const parsed = parseDockerfile(fixture('testfile-line/Dockerfile'), 'testfile-line/Dockerfile');
    assert.deepEqual(
      parsed.instructions.map((i) => ({ startLine: i.location.startLine, endLine: i.location.endLine, instruction: i.kind })),
      expected.children,
    );
    assert.equal(parsed.instructions[0]?.location.file, 'testfile-line/Dockerfile');
    // `# ESCAPE=\` on the first line is a directive (names are case-insensitive).
    assert.deepEqual(parsed.directives, { escape: '\\' });
  });
});

describe('heredoc extraction (BuildKit heredoc cases)', () => {
  const data = JSON.parse(fixture('heredoc-extract.json')) as {
    dockerfile: string;
    expectedHeredocsByChild: ({ Name: string; Content: string; Expand: boolean; Chomp: boolean; FileDescriptor: number }[] | null)[];
  };
  const tree = parseSyntaxTree(data.dockerfile, 'Dockerfile');

  it('has one syntax node per expected entry, after the FROM', () => {
    assert.equal(data.expectedHeredocsByChild.length, 27);
    assert.equal(tree.nodes.length, 28);
  });

  data.expectedHeredocsByChild.forEach((expected, i) => {
    const node = tree.nodes[i + 1];
    it(`node ${i + 1}: ${node?.original ?? '(missing)'}`, () => {
      const actual = node?.heredocs.map((doc) => ({
        Name: doc.name,
        Content: doc.content,
        Expand: doc.expand,
        Chomp: doc.chomp,
        FileDescriptor: doc.fileDescriptor,
      }));
      assert.deepEqual(actual, expected ?? []);
    });
  });

  it('rejects the same file as instructions: the body line after `USER <<INVALID` is an unknown instruction', () => {
    assertFails(data.dockerfile, 9, 'unknown instruction: INVALID');
  });

  it('reports an unterminated heredoc at its instruction', () => {
    assertFails('FROM a\nRUN <<EOF\necho hi\n', 2, 'unterminated heredoc');
  });

  it('gives a heredoc instruction the lines of its body', () => {
    const run = parseOne('FROM a\nRUN <<-EOF cat\n\techo $X\n\tEOF\nUSER b\n', 'RUN', 1);
    assert.deepEqual(run.location, { file: 'Dockerfile', startLine: 2, endLine: 4 });
    assert.deepEqual(run.command, { args: ['<<-EOF cat'], prependShell: true });
    assert.deepEqual(run.heredocs, [{ name: 'EOF', content: '\techo $X\n', expand: true, chomp: true, fileDescriptor: 0 }]);
  });

  it('reads no heredocs for JSON form or for other instructions', () => {
    const tree2 = parseSyntaxTree('FROM a\nRUN ["cat", "<<EOF"]\nCMD <<EOF\nEOF\n', 'Dockerfile');
    assert.deepEqual(tree2.nodes.map((n) => [n.keyword, n.heredocs.length]), [['FROM', 0], ['RUN', 0], ['CMD', 0], ['EOF', 0]]);
  });
});

describe('parser directives', () => {
  it('records syntax, escape and check and applies the escape token', () => {
    const parsed = parseDockerfile('# syntax=docker/dockerfile:1.7\n# check = skip=all\n#escape=`\nFROM a\nRUN echo `\n  hi\n', 'Dockerfile');
    assert.deepEqual(parsed.directives, { syntax: 'docker/dockerfile:1.7', check: 'skip=all', escape: '`' });
    assert.equal(parsed.escapeToken, '`');
    assert.deepEqual(parseOne('#escape=`\nFROM a\nRUN echo `\n  hi\n', 'RUN').command.args, ['echo   hi']);
  });

  it('defaults to the backslash', () => {
    const parsed = parseDockerfile('FROM a\n', 'Dockerfile');
    assert.deepEqual(parsed.directives, {});
    assert.equal(parsed.escapeToken, '\\');
  });

  it('ignores directives after a blank line, an ordinary comment, an unknown directive or an instruction', () => {
    for (const text of [
      '\n# escape=`\nFROM a\n',
      '# hello\n# escape=`\nFROM a\n',
      '# foo=bar\n# escape=`\nFROM a\n',
      'FROM a\n# escape=`\n',
    ]) {
      const parsed = parseDockerfile(text, 'Dockerfile');
      assert.deepEqual(parsed.directives, {}, text);
      assert.equal(parsed.escapeToken, '\\', text);
    }
  });

  it('accepts a byte order mark before the directives', () => {
    assert.equal(parseDockerfile('\ufeff# escape=`\nFROM a\n', 'Dockerfile').escapeToken, '`');
  });

  it('rejects an escape token other than \\ and `', () => {
    assertFails('# escape=x\nFROM a\n', 1, "invalid escape token 'x' does not match ` or \\");
  });

  it('rejects a repeated directive', () => {
    assertFails('# escape=`\n# Escape=\\\nFROM a\n', 2, 'only one escape parser directive can be used');
  });
});

describe('logical lines', () => {
  it('joins continuations, drops comments and blank lines inside them, and keeps the original text', () => {
    const run = parseOne('FROM a\nRUN echo a \\\n# comment\n\n  b  \\\n  c\n', 'RUN');
    assert.deepEqual(run.command.args, ['echo a   b    c']);
    assert.equal(run.original, 'RUN echo a   b    c');
    assert.deepEqual(run.location, { file: 'Dockerfile', startLine: 2, endLine: 6 });
  });

  it('does not continue after an escaped escape token', () => {
    const { instructions } = parseDockerfile('FROM a\nENV A b\\\\\nENV B c\n', 'Dockerfile');
    assert.deepEqual(instructions.map((i) => i.kind), ['FROM', 'ENV', 'ENV']);
  });

  it('handles CRLF line endings', () => {
    const parsed = parseDockerfile('FROM a\r\nRUN echo \\\r\n  hi\r\nCOPY <<EOF /x\r\nbody\r\nEOF\r\n', 'Dockerfile');
    const [, run, copy] = parsed.instructions;
    assert.equal(run?.kind === 'RUN' && run.command.args[0], 'echo   hi');
    assert.equal(copy?.kind === 'COPY' && copy.sourceContents[0]?.data, 'body\r\n');
  });

  it('records the comments above an instruction; an empty `#` line (not a blank line) resets them', () => {
    const tree = parseSyntaxTree('# first\n#\n# second\n\n# third\nFROM a\nRUN x\n', 'Dockerfile');
    assert.deepEqual(tree.nodes[0]?.comments, ['second', 'third']);
    assert.deepEqual(tree.nodes[1]?.comments, []);
  });
});

describe('FROM', () => {
  it('reads the image, the stage name (lowercased) and the platform, unexpanded', () => {
    const from = parseOne('FROM --platform=$BUILDPLATFORM golang:${V} AS Build\n', 'FROM');
    assert.equal(from.image, 'golang:${V}');
    assert.equal(from.stageName, 'build');
    assert.equal(from.platform, '$BUILDPLATFORM');
    assert.equal(from.original, 'FROM --platform=$BUILDPLATFORM golang:${V} AS Build');
  });

  it('leaves optional fields absent', () => {
    const from = parseOne('FROM alpine\n', 'FROM');
    assert.equal('stageName' in from, false);
    assert.equal('platform' in from, false);
  });

  it('rejects wrong argument counts and invalid stage names', () => {
    assertFails('FROM\n', 1, 'FROM requires either one or three arguments');
    assertFails('FROM a b\n', 1, 'FROM requires either one or three arguments');
    assertFails('FROM a FOR b\n', 1, 'FROM requires either one or three arguments');
    assertFails('FROM a AS 1st\n', 1, 'invalid name for build stage: "1st", name can\'t start with a number or contain symbols');
    assertFails('FROM --platfrom=x a\n', 1, 'unknown flag: --platfrom (did you mean platform?)');
    assertFails('FROM --os=x a\n', 1, 'unknown flag: --os');
  });
});

describe('RUN', () => {
  it('keeps the shell-form command exactly as written', () => {
    const run = parseOne('FROM a\nRUN   echo "$HOME"  &&  ls\t-l \n', 'RUN');
    assert.deepEqual(run.command, { args: ['echo "$HOME"  &&  ls\t-l'], prependShell: true });
    assert.equal(run.network, 'default');
    assert.equal(run.security, 'sandbox');
    assert.deepEqual(run.mounts, []);
  });

  it('reads the exec form', () => {
    assert.deepEqual(parseOne('FROM a\nRUN ["echo", "a b"]\n', 'RUN').command, { args: ['echo', 'a b'], prependShell: false });
  });

  it('records repeated mounts, network and security', () => {
    const run = parseOne(
      'FROM a\nRUN --mount=type=cache,target=/c --mount="type=secret,id=s" --network=none --security=insecure make\n',
      'RUN',
    );
    assert.deepEqual(run.mounts, ['type=cache,target=/c', 'type=secret,id=s']);
    assert.equal(run.network, 'none');
    assert.equal(run.security, 'insecure');
    assert.deepEqual(run.command.args, ['make']);
  });

  it('rejects bad flags', () => {
    assertFails('FROM a\nRUN --network=bridge x\n', 2, 'invalid network mode "bridge"');
    assertFails('FROM a\nRUN --security=other x\n', 2, 'security "other" is not valid');
    assertFails('FROM a\nRUN --network= x\n', 2, 'invalid network mode ""');
    assertFails('FROM a\nRUN --mount x\n', 2, 'missing a value on flag: --mount');
    assertFails('FROM a\nRUN --network=host --network=none x\n', 2, 'duplicate flag specified: --network');
    assertFails('FROM a\nRUN --foo x\n', 2, 'unknown flag: --foo');
  });

  it('carries several heredocs in order', () => {
    const run = parseOne('FROM a\nRUN <<A 3<<\'B\' cat\na\nA\nb $x\nB\n', 'RUN');
    assert.deepEqual(
      run.heredocs.map((doc) => [doc.name, doc.content, doc.expand, doc.fileDescriptor]),
      [
        ['A', 'a\n', true, 0],
        ['B', 'b $x\n', false, 3],
      ],
    );
  });
});

describe('CMD and ENTRYPOINT', () => {
  it('tell the JSON form from the shell form as BuildKit does', () => {
    assert.deepEqual(parseOne('FROM a\nCMD ["a", "b"]\n', 'CMD').command, { args: ['a', 'b'], prependShell: false });
    assert.deepEqual(parseOne('FROM a\nCMD [ ]\n', 'CMD').command, { args: [], prependShell: false });
    assert.deepEqual(parseOne("FROM a\nCMD ['a']\n", 'CMD').command, { args: ["['a']"], prependShell: true });
    assert.deepEqual(parseOne('FROM a\nENTRYPOINT ["a", "b"\n', 'ENTRYPOINT').command, {
      args: ['["a", "b"'],
      prependShell: true,
    });
    assert.deepEqual(parseOne('FROM a\nENTRYPOINT exec a\n', 'ENTRYPOINT').command, { args: ['exec a'], prependShell: true });
  });

  it('rejects arrays that are not all strings, and flags', () => {
    assertFails('FROM a\nCMD ["a", 1]\n', 2, 'when using JSON array syntax, arrays must be comprised of strings only');
    assertFails('FROM a\nENTRYPOINT --x a\n', 2, 'unknown flag: --x');
  });
});

describe('ENV and LABEL', () => {
  it('reads the legacy `KEY value` form with the rest of the line as value', () => {
    assert.deepEqual(parseOne('FROM a\nENV PATH /usr/bin:$PATH  x\n', 'ENV').env, [
      { key: 'PATH', value: '/usr/bin:$PATH  x', noDelim: true },
    ]);
  });

  it('reads `k=v ...` pairs with quotes kept raw', () => {
    assert.deepEqual(parseOne('FROM a\nENV a=1 b="x y" c=z\\ w d=\n', 'ENV').env, [
      { key: 'a', value: '1', noDelim: false },
      { key: 'b', value: '"x y"', noDelim: false },
      { key: 'c', value: 'z\\ w', noDelim: false },
      { key: 'd', value: '', noDelim: false },
    ]);
    assert.deepEqual(parseOne('FROM a\nLABEL "com.x"="a b" v=1\n', 'LABEL').labels, [
      { key: '"com.x"', value: '"a b"', noDelim: false },
      { key: 'v', value: '1', noDelim: false },
    ]);
  });

  it('rejects missing values, blank names and words without =', () => {
    assertFails('FROM a\nENV PATH\n', 2, 'ENV must have two arguments');
    assertFails('FROM a\nLABEL x\n', 2, 'LABEL must have two arguments');
    assertFails('FROM a\nENV =x\n', 2, 'ENV names can not be blank');
    assertFails('FROM a\nENV\n', 2, 'ENV requires at least one argument');
    assertFails('FROM a\nLABEL a=1 b\n', 2, 'Syntax error - can\'t find = in "b". Must be of the form: name=value');
  });
});

describe('COPY and ADD', () => {
  it('reads COPY flags and operands', () => {
    const copy = parseOne(
      'FROM a\nCOPY --from=build --chown=1:1 --chmod=644 --link --parents --exclude=*.md --exclude=.git a b/ /dst/\n',
      'COPY',
    );
    assert.deepEqual(copy.sources, ['a', 'b/']);
    assert.equal(copy.dest, '/dst/');
    assert.equal(copy.from, 'build');
    assert.equal(copy.chown, '1:1');
    assert.equal(copy.chmod, '644');
    assert.equal(copy.link, true);
    assert.equal(copy.parents, true);
    assert.deepEqual(copy.excludes, ['*.md', '.git']);
    assert.deepEqual(copy.sourceContents, []);
  });

  it('defaults COPY flags', () => {
    const copy = parseOne('FROM a\nCOPY ["x y", "/z"]\n', 'COPY');
    assert.deepEqual([copy.sources, copy.dest, copy.link, copy.parents, copy.excludes], [['x y'], '/z', false, false, []]);
    assert.equal('from' in copy, false);
    assert.equal(parseOne('FROM a\nCOPY --link=false x /y\n', 'COPY').link, false);
    // An empty value means "not set", as in the reference.
    assert.equal('from' in parseOne('FROM a\nCOPY --from= x /y\n', 'COPY'), false);
  });

  it('reads ADD flags', () => {
    const add = parseOne(
      'FROM a\nADD --checksum=sha256:abc --keep-git-dir --unpack=false --exclude=x https://e.com/a.tgz /a\n',
      'ADD',
    );
    assert.deepEqual(add.sources, ['https://e.com/a.tgz']);
    assert.equal(add.checksum, 'sha256:abc');
    assert.equal(add.keepGitDir, true);
    assert.equal(add.unpack, false);
    assert.deepEqual(add.excludes, ['x']);
    const plain = parseOne('FROM a\nADD x /y\n', 'ADD');
    assert.equal('keepGitDir' in plain, false);
    assert.equal('unpack' in plain, false);
  });

  it('turns heredoc sources into inline contents, chomped for <<-', () => {
    const copy = parseOne('FROM a\nCOPY <<-one <<"two" f /dst/\n\tx $A\n\tone\ny $B\ntwo\n', 'COPY');
    assert.deepEqual(copy.sources, ['f']);
    assert.deepEqual(copy.sourceContents, [
      { path: 'one', data: 'x $A\n', expand: true },
      { path: 'two', data: 'y $B\n', expand: false },
    ]);
    // The raw heredoc keeps its tabs.
    assert.equal(copy.heredocs[0]?.content, '\tx $A\n');
  });

  it('rejects a missing destination, a heredoc destination and flags of the other instruction', () => {
    assertFails('FROM a\nCOPY x\n', 2, 'COPY requires at least two arguments, but only one was provided. Destination could not be determined');
    assertFails('FROM a\nADD x\n', 2, 'ADD requires at least two arguments, but only one was provided. Destination could not be determined');
    assertFails('FROM a\nCOPY x <<EOF\nEOF\n', 2, 'COPY cannot accept a heredoc as a destination');
    assertFails('FROM a\nADD --from=b x /y\n', 2, 'unknown flag: --from');
    assertFails('FROM a\nCOPY --checksum=x x /y\n', 2, 'unknown flag: --checksum');
    assertFails('FROM a\nCOPY --chmod x /y\n', 2, 'missing a value on flag: --chmod');
    assertFails('FROM a\nCOPY --link=yes x /y\n', 2, 'expecting boolean value for flag --link, not: yes');
    assertFails('FROM a\nCOPY --link= x /y\n', 2, 'missing a value on flag: --link');
    assertFails('FROM a\nCOPY --form=b x /y\n', 2, 'unknown flag: --form (did you mean from?)');
  });
});

describe('single-value instructions', () => {
  it('reads MAINTAINER, USER, WORKDIR and STOPSIGNAL raw', () => {
    assert.equal(parseOne('FROM a\nMAINTAINER Jane Doe <j@d>\n', 'MAINTAINER').maintainer, 'Jane Doe <j@d>');
    assert.equal(parseOne('FROM a\nUSER ${U}:grp\n', 'USER').user, '${U}:grp');
    assert.equal(parseOne('FROM a\nWORKDIR /a b\n', 'WORKDIR').path, '/a b');
    assert.equal(parseOne('FROM a\nSTOPSIGNAL SIGKILL\n', 'STOPSIGNAL').signal, 'SIGKILL');
  });

  it('rejects a missing argument and flags', () => {
    assertFails('FROM a\nUSER\n', 2, 'USER requires exactly one argument');
    assertFails('FROM a\nWORKDIR\n', 2, 'WORKDIR requires exactly one argument');
    assertFails('FROM a\nSTOPSIGNAL\n', 2, 'STOPSIGNAL requires exactly one argument');
    assertFails('FROM a\nMAINTAINER\n', 2, 'MAINTAINER requires exactly one argument');
    assertFails('FROM a\nWORKDIR --x /a\n', 2, 'unknown flag: --x');
  });
});

describe('EXPOSE and VOLUME', () => {
  it('reads ports (sorted, as BuildKit does) and volumes', () => {
    assert.deepEqual(parseOne('FROM a\nEXPOSE 8080/udp 443 ${P}\n', 'EXPOSE').ports, ['${P}', '443', '8080/udp']);
    assert.deepEqual(parseOne('FROM a\nVOLUME /a /b\n', 'VOLUME').volumes, ['/a', '/b']);
    assert.deepEqual(parseOne('FROM a\nVOLUME [" /a ", "/b c"]\n', 'VOLUME').volumes, ['/a', '/b c']);
  });

  it('rejects empty lists and empty volumes', () => {
    assertFails('FROM a\nEXPOSE\n', 2, 'EXPOSE requires at least one argument');
    assertFails('FROM a\nVOLUME\n', 2, 'VOLUME requires at least one argument');
    assertFails('FROM a\nVOLUME ["/a", " "]\n', 2, 'VOLUME specified can not be an empty string');
  });
});

describe('ARG', () => {
  it('reads several definitions, before and after FROM', () => {
    const { instructions } = parseDockerfile('ARG A B=1 C="x y"\nFROM a\nARG D=\n', 'Dockerfile');
    const [global, , local] = instructions;
    assert.deepEqual(global?.kind === 'ARG' && global.args, [{ key: 'A' }, { key: 'B', value: '1' }, { key: 'C', value: '"x y"' }]);
    assert.deepEqual(local?.kind === 'ARG' && local.args, [{ key: 'D', value: '' }]);
  });

  it('rejects an empty ARG and blank names', () => {
    assertFails('ARG\nFROM a\n', 1, 'ARG requires at least one argument');
    assertFails('ARG =1\nFROM a\n', 1, 'ARG names can not be blank');
  });
});

describe('ONBUILD', () => {
  it('keeps the trigger text and its parsed form', () => {
    const onbuild = parseOne('FROM a\nONBUILD  COPY --from=b x /y\n', 'ONBUILD');
    assert.equal(onbuild.expression, 'COPY --from=b x /y');
    assert.equal(onbuild.trigger.kind, 'COPY');
    assert.equal(onbuild.trigger.kind === 'COPY' && onbuild.trigger.from, 'b');
    assert.deepEqual(onbuild.trigger.location, onbuild.location);
  });

  it('appends heredoc bodies to the trigger text', () => {
    const onbuild = parseOne('FROM a\nonbuild RUN <<EOF\necho hi\nEOF\n', 'ONBUILD');
    assert.equal(onbuild.expression, 'RUN <<EOF\necho hi\nEOF');
    assert.equal(onbuild.trigger.kind === 'RUN' && onbuild.trigger.heredocs[0]?.content, 'echo hi\n');
  });

  it('rejects chaining, FROM and MAINTAINER triggers, empty triggers and invalid triggers', () => {
    assertFails('FROM a\nONBUILD ONBUILD RUN x\n', 2, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
    assertFails('FROM a\nONBUILD from b\n', 2, 'FROM isn\'t allowed as an ONBUILD trigger');
    assertFails('FROM a\nONBUILD MAINTAINER me\n', 2, 'MAINTAINER isn\'t allowed as an ONBUILD trigger');
    assertFails('FROM a\nONBUILD\n', 2, 'ONBUILD requires at least one argument');
    assertFails('FROM a\nONBUILD COPY x\n', 2, 'COPY requires at least two arguments, but only one was provided. Destination could not be determined');
  });
});

describe('HEALTHCHECK', () => {
  it('reads NONE', () => {
    assert.deepEqual(parseOne('FROM a\nHEALTHCHECK NONE\n', 'HEALTHCHECK').health, {
      test: ['NONE'],
      interval: 0,
      timeout: 0,
      startPeriod: 0,
      startInterval: 0,
      retries: 0,
    });
  });

  it('reads CMD in shell and exec form with durations in nanoseconds', () => {
    const shell = parseOne(
      'FROM a\nHEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=250ms --start-interval=2s --retries=3 CMD curl -f http://x/ || exit 1\n',
      'HEALTHCHECK',
    );
    assert.deepEqual(shell.health, {
      test: ['CMD-SHELL', 'curl -f http://x/ || exit 1'],
      interval: 90e9,
      timeout: 1.5e9,
      startPeriod: 250e6,
      startInterval: 2e9,
      retries: 3,
    });
    const unset = parseOne('FROM a\nHEALTHCHECK --interval= --retries= CMD x\n', 'HEALTHCHECK').health;
    assert.deepEqual([unset.interval, unset.retries], [0, 0]);
    assert.deepEqual(parseOne('FROM a\nhealthcheck cmd ["/bin/check", "-q"]\n', 'HEALTHCHECK').health.test, [
      'CMD',
      '/bin/check',
      '-q',
    ]);
  });

  it('rejects bad forms and values', () => {
    assertFails('FROM a\nHEALTHCHECK\n', 2, 'HEALTHCHECK requires at least one argument');
    assertFails('FROM a\nHEALTHCHECK NONE x\n', 2, 'HEALTHCHECK NONE takes no arguments');
    assertFails('FROM a\nHEALTHCHECK CMD\n', 2, 'Missing command after HEALTHCHECK CMD');
    assertFails('FROM a\nHEALTHCHECK CONNECT TCP 7000\n', 2, 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)');
    assertFails('FROM a\nHEALTHCHECK --interval=5 CMD x\n', 2, 'time: missing unit in duration "5"');
    assertFails('FROM a\nHEALTHCHECK --timeout=100us CMD x\n', 2, 'Interval "timeout" cannot be less than 1ms');
    assertFails('FROM a\nHEALTHCHECK --timeout=-1s CMD x\n', 2, 'Interval "timeout" cannot be less than 1ms');
    assertFails('FROM a\nHEALTHCHECK --retries=-1 CMD x\n', 2, '--retries cannot be negative (-1)');
    assertFails('FROM a\nHEALTHCHECK --retries=x CMD x\n', 2, 'strconv.ParseInt: parsing "x": invalid syntax');
    assertFails('FROM a\nHEALTHCHECK --retries=3000000000 CMD x\n', 2, 'strconv.ParseInt: parsing "3000000000": value out of range');
    assertFails('FROM a\nHEALTHCHECK --period=1s CMD x\n', 2, 'unknown flag: --period');
  });
});

describe('SHELL', () => {
  it('accepts only the JSON form', () => {
    assert.deepEqual(parseOne('FROM a\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\n', 'SHELL').shell, [
      '/bin/bash',
      '-eo',
      'pipefail',
      '-c',
    ]);
    assertFails('FROM a\nSHELL /bin/bash -c\n', 2, 'SHELL requires the arguments to be in JSON form');
    assertFails('FROM a\nSHELL []\n', 2, 'SHELL requires at least one argument');
  });
});

describe('file-level rules', () => {
  it('rejects unknown instructions, suggesting a close name', () => {
    assertFails('FROM a\nBOGUS bar\n', 2, 'unknown instruction: BOGUS');
    assertFails('FROM a\nFOO bar\n', 2, 'unknown instruction: FOO (did you mean FROM?)');
    assertFails('FROM a\nCOPPY a b\n', 2, 'unknown instruction: COPPY (did you mean COPY?)');
    assertFails('FROM a\nrn x\n', 2, 'unknown instruction: rn (did you mean run?)');
    assertFails('FROM a\nconstructor x\n', 2, 'unknown instruction: constructor');
  });

  it('rejects instructions other than ARG before the first FROM', () => {
    assertFails('ARG A\nRUN x\nFROM a\n', 2, 'no build stage in current context');
  });

  it('gives instructions in file order with locations and trimmed original text', () => {
    const parsed = parseDockerfile('FROM a AS b\n\nRUN x \\\n  y\nCMD ["z"]\n', 'ctx/Dockerfile');
    assert.deepEqual(
      parsed.instructions.map((i) => [i.kind, i.location.startLine, i.location.endLine, i.original]),
      [
        ['FROM', 1, 1, 'FROM a AS b'],
        ['RUN', 3, 4, 'RUN x   y'],
        ['CMD', 5, 5, 'CMD ["z"]'],
      ],
    );
    assert.ok(parsed.instructions.every((i) => i.location.file === 'ctx/Dockerfile'));
  });

  it('returns frozen values', () => {
    const parsed = parseDockerfile('FROM a\nCOPY --exclude=x a /b\n', 'Dockerfile');
    const copy = parsed.instructions[1];
    assert.ok(Object.isFrozen(parsed) && Object.isFrozen(parsed.instructions));
    assert.ok(copy?.kind === 'COPY' && Object.isFrozen(copy) && Object.isFrozen(copy.excludes) && Object.isFrozen(copy.node));
  });
});

describe('Go durations', () => {
  it('parses sums of decimal numbers with units', () => {
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('1h2m3s4ms5us6ns'), 3_723_004_005_006);
    assert.equal(parseGoDuration('1.5h'), 5_400_000_000_000);
    assert.equal(parseGoDuration('.5s'), 500_000_000);
    assert.equal(parseGoDuration('1.s'), 1_000_000_000);
    assert.equal(parseGoDuration('2µs'), 2_000);
    assert.equal(parseGoDuration('2μs'), 2_000);
    assert.equal(parseGoDuration('+3ms'), 3_000_000);
    assert.equal(parseGoDuration('-3ms'), -3_000_000);
    assert.equal(parseGoDuration('0.000000001s'), 1);
  });

  it('rejects what Go rejects, with its messages', () => {
    const fails = (text: string, message: string): void =>
      assert.throws(() => parseGoDuration(text), (err: unknown) => err instanceof Error && err.message === message);
    fails('', 'time: invalid duration ""');
    fails('s', 'time: invalid duration "s"');
    fails('.s', 'time: invalid duration ".s"');
    fails('1', 'time: missing unit in duration "1"');
    fails('1d', 'time: unknown unit "d" in duration "1d"');
    fails('1é', 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"');
    fails('9999999999999999999s', 'time: invalid duration "9999999999999999999s"');
    fails('3000000h', 'time: invalid duration "3000000h"');
  });
});
