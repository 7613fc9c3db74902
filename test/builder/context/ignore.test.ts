import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadIgnorePatterns, parseIgnoreFile, PatternMatcher, type PatternKind } from '../../../builder/context/ignore.js';
import { TsbuildError } from '../../../layers/errors.js';
import { repoRoot } from '../../support/repo-root.js';

interface Cases {
  matchesOrParentMatches_single: { cases: { pattern: string; text: string; pass: boolean }[] };
  matchesOrParentMatches_multi: { cases: { patterns: string[]; text: string; pass: boolean }[] };
  matches_filepath_style: { cases: { pattern: string; s: string; match: boolean; err: string | null }[] };
  compile: { cases: { pattern: string; matchType: string; regexp: string }[] };
  misc: { cases: MiscCase[] };
  ignorefile_readall: { input: string; expected: string[] };
}

interface MiscCase {
  api: string;
  patterns: string[];
  text?: string;
  match?: boolean;
  error?: boolean;
  matchError?: string;
  cleanedCount?: number;
  exclusions?: boolean;
}

const cases = JSON.parse(
  readFileSync(join(repoRoot(), 'test/fixtures/patternmatcher/patternmatcher-cases.json'), 'utf8'),
) as Cases;

/** Asserts that building a matcher fails with a one-line error naming the bad pattern. */
function assertBadPattern(patterns: string[], bad: string): void {
  assert.throws(
    () => new PatternMatcher(patterns),
    (err: unknown) =>
      err instanceof TsbuildError &&
      err.code === 'IGNORE_PATTERN' &&
      err.message.includes(JSON.stringify(bad)) &&
      !err.message.includes('\n'),
  );
}

describe('corpus: single pattern, path or parent matches', () => {
  for (const c of cases.matchesOrParentMatches_single.cases) {
    it(`${JSON.stringify(c.pattern)} ${c.pass ? 'matches' : 'does not match'} ${JSON.stringify(c.text)}`, () => {
      assert.equal(new PatternMatcher([c.pattern]).matches(c.text), c.pass);
    });
  }
});

describe('corpus: several patterns with ! exceptions', () => {
  for (const c of cases.matchesOrParentMatches_multi.cases) {
    it(`${JSON.stringify(c.patterns)} ${c.pass ? 'matches' : 'does not match'} ${JSON.stringify(c.text)}`, () => {
      assert.equal(new PatternMatcher(c.patterns).matches(c.text), c.pass);
    });
  }
});

describe('corpus: filepath.Match syntax and results', () => {
  for (const c of cases.matches_filepath_style.cases) {
    if (c.err !== null) {
      it(`${JSON.stringify(c.pattern)} is a bad pattern (path ${JSON.stringify(c.s)})`, () => {
        assertBadPattern([c.pattern], c.pattern);
      });
    } else {
      it(`${JSON.stringify(c.pattern)} ${c.match ? 'matches' : 'does not match'} ${JSON.stringify(c.s)}`, () => {
        assert.equal(new PatternMatcher([c.pattern]).matches(c.s), c.match);
      });
    }
  }
});

describe('corpus: compiled form of a pattern', () => {
  const kinds: Record<string, PatternKind> = {
    exactMatch: 'exact',
    prefixMatch: 'prefix',
    suffixMatch: 'suffix',
    regexpMatch: 'regexp',
  };
  // Every path of the corpus, plus a few with dots, newlines and nested directories.
  const probes = new Set([
    ...cases.matchesOrParentMatches_single.cases.map((c) => c.text),
    ...cases.matches_filepath_style.cases.map((c) => c.s),
    ...cases.compile.cases.map((c) => c.pattern),
    'x/dir2/y/z', 'dir2/a', 'a/b', 'ab/b', 'a.txt', 'x/a.txt', '.hidden', 'x/.hidden', 'fileXtxt',
    'n\nl/dir2/f', 'dir2/n\nl', 'a\nb',
  ]);
  for (const c of cases.compile.cases) {
    it(`${JSON.stringify(c.pattern)} compiles to ${c.matchType}`, () => {
      const [pattern] = new PatternMatcher([c.pattern]).patterns;
      assert.ok(pattern);
      assert.equal(pattern.kind, kinds[c.matchType]);
      if (c.matchType !== 'regexpMatch') return;
      // The reference regular expression uses syntax that reads the same in JavaScript.
      const reference = new RegExp(c.regexp, 'u');
      for (const probe of probes) {
        assert.equal(pattern.test(probe), reference.test(probe), `path ${JSON.stringify(probe)}`);
      }
    });
  }
});

describe('corpus: miscellaneous', () => {
  for (const c of cases.misc.cases) {
    const name = `${c.api} ${JSON.stringify(c.patterns)}${c.text === undefined ? '' : ` on ${JSON.stringify(c.text)}`}`;
    it(name, () => {
      if (c.error === true || c.matchError !== undefined) {
        // A pattern the reference only rejects when matching is rejected when the matcher is built.
        const bad = c.patterns.find((p) => p !== '');
        assert.ok(bad !== undefined);
        assertBadPattern(c.patterns, bad);
        return;
      }
      const matcher = new PatternMatcher(c.patterns);
      if (c.match !== undefined) assert.equal(matcher.matches(c.text ?? ''), c.match);
      if (c.cleanedCount !== undefined) assert.equal(matcher.patterns.length, c.cleanedCount);
      if (c.exclusions !== undefined) assert.equal(matcher.hasExclusions, c.exclusions);
    });
  }
});

describe('parseIgnoreFile', () => {
  it('corpus: reads the reference .dockerignore', () => {
    assert.deepEqual(parseIgnoreFile(cases.ignorefile_readall.input), cases.ignorefile_readall.expected);
  });

  it('returns no patterns for an empty file', () => {
    assert.deepEqual(parseIgnoreFile(''), []);
  });

  it('strips a byte order mark and CRLF line ends', () => {
    assert.deepEqual(parseIgnoreFile('\uFEFF#c\r\nfoo\r\nbar\r\n'), ['foo', 'bar']);
  });

  it('treats # as a comment only in the first column', () => {
    assert.deepEqual(parseIgnoreFile('# comment\n  #kept\n'), ['#kept']);
  });

  it('cleans paths and keeps a lone /', () => {
    assert.deepEqual(parseIgnoreFile('./a//b/../c/\n/\n!./x/\n\t/y\u00a0\n..\n'), ['a/c', '/', '!x', 'y', '..']);
  });

  it('trims the same spaces as Go, not a byte order mark inside the file', () => {
    assert.deepEqual(parseIgnoreFile('a\n\uFEFFb\n\u0085c\u3000'), ['a', '\uFEFFb', 'c']);
  });
});

describe('PatternMatcher', () => {
  it('excludes a directory and everything below it', () => {
    const m = new PatternMatcher(['node_modules']);
    assert.equal(m.matches('node_modules'), true);
    assert.equal(m.matches('node_modules/x/y.js'), true);
    assert.equal(m.matches('src/node_modules'), false);
    assert.equal(m.matches('node_modules_old'), false);
  });

  it('applies the last matching pattern', () => {
    const m = new PatternMatcher(['*.md', '!README*.md', 'README-secret.md']);
    assert.equal(m.matches('CHANGES.md'), true);
    assert.equal(m.matches('README.md'), false);
    assert.equal(m.matches('README-secret.md'), true);
  });

  it('never excludes the root', () => {
    const m = new PatternMatcher(['**']);
    assert.equal(m.matches('.'), false);
    assert.equal(m.matches(''), false);
    assert.equal(m.matches('a'), true);
  });

  it('cleans the path before matching', () => {
    const m = new PatternMatcher(['a/b']);
    assert.equal(m.matches('./a//b/'), true);
    assert.equal(m.matches('a/c/../b/d'), true);
  });

  it('takes an escaped letter literally', () => {
    const m = new PatternMatcher(['a\\d']);
    assert.equal(m.matches('ad'), true);
    assert.equal(m.matches('a5'), false);
  });

  it('matches code points, not UTF-16 units', () => {
    assert.equal(new PatternMatcher(['a?b']).matches('a\u{1F600}b'), true);
    assert.equal(new PatternMatcher(['[\u{1F600}-\u{1F64F}]']).matches('\u{1F601}'), true);
  });

  it('lets ** cross directories but not newlines, like the reference', () => {
    const m = new PatternMatcher(['**/build/*.o']);
    assert.equal(m.matches('a/b/build/x.o'), true);
    assert.equal(m.matches('a\nb/build/x.o'), false);
  });

  it('rejects a range written backwards', () => {
    assertBadPattern(['ok', '!x/[z-a]'], '!x/[z-a]');
  });

  it('rejects a lone !', () => {
    assertBadPattern([' ! '], ' ! ');
  });
});

describe('PatternMatcher.canSkipDir', () => {
  it('skips an excluded directory when there are no exceptions', () => {
    const m = new PatternMatcher(['build', '*.log']);
    assert.equal(m.canSkipDir('build'), true);
    assert.equal(m.canSkipDir('build/sub'), true);
    assert.equal(m.canSkipDir('src'), false);
  });

  it('walks a directory an exception points into', () => {
    const m = new PatternMatcher(['docs', '!docs/README.md', 'tmp']);
    assert.equal(m.canSkipDir('docs'), false);
    assert.equal(m.matches('docs/README.md'), false);
    assert.equal(m.canSkipDir('tmp'), true);
  });

  it('treats a trailing /* or /** of an exception as its directory', () => {
    const m = new PatternMatcher(['**', '!keep/**', '!other/*']);
    assert.equal(m.canSkipDir('drop'), true);
    assert.equal(m.canSkipDir('keep'), false);
    assert.equal(m.canSkipDir('other'), false);
  });

  it('walks every excluded directory when an exception has wildcards', () => {
    const m = new PatternMatcher(['vendor', '!**/LICENSE']);
    assert.equal(m.matches('vendor/x/LICENSE'), false);
    assert.equal(m.canSkipDir('vendor'), false);
  });

  it('never skips a directory that is not excluded', () => {
    const m = new PatternMatcher(['*.tmp']);
    assert.equal(m.canSkipDir('dir'), false);
  });
});

describe('loadIgnorePatterns', () => {
  async function withContext(files: Record<string, string>, fn: (dir: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'tsbuild-ignore-'));
    try {
      for (const [name, content] of Object.entries(files)) {
        await mkdir(join(dir, name, '..'), { recursive: true });
        await writeFile(join(dir, name), content);
      }
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('returns no patterns without an ignore file', async () => {
    await withContext({ Dockerfile: 'FROM scratch\n' }, async (dir) => {
      assert.deepEqual(await loadIgnorePatterns(dir, join(dir, 'Dockerfile')), []);
    });
  });

  it('reads .dockerignore at the context root', async () => {
    const files = { Dockerfile: '', '.dockerignore': '# c\n/secret\n!secret/ok\n' };
    await withContext(files, async (dir) => {
      assert.deepEqual(await loadIgnorePatterns(dir, join(dir, 'Dockerfile')), ['secret', '!secret/ok']);
    });
  });

  it('prefers <Dockerfile>.dockerignore beside the Dockerfile', async () => {
    const files = {
      'build/app.Dockerfile': '',
      'build/app.Dockerfile.dockerignore': 'only-app\n',
      '.dockerignore': 'root\n',
    };
    await withContext(files, async (dir) => {
      assert.deepEqual(await loadIgnorePatterns(dir, join(dir, 'build/app.Dockerfile')), ['only-app']);
    });
  });

  it('ignores a Dockerfile-specific file that is not beside the Dockerfile', async () => {
    const files = { 'build/Dockerfile': '', 'Dockerfile.dockerignore': 'misplaced\n', '.dockerignore': 'root\n' };
    await withContext(files, async (dir) => {
      assert.deepEqual(await loadIgnorePatterns(dir, join(dir, 'build/Dockerfile')), ['root']);
    });
  });

  it('uses an empty Dockerfile-specific file rather than .dockerignore', async () => {
    const files = { Dockerfile: '', 'Dockerfile.dockerignore': '', '.dockerignore': 'root\n' };
    await withContext(files, async (dir) => {
      assert.deepEqual(await loadIgnorePatterns(dir, join(dir, 'Dockerfile')), []);
    });
  });

  it('treats a directory named .dockerignore as no ignore file', async () => {
    await withContext({ Dockerfile: '', '.dockerignore/x': '' }, async (dir) => {
      assert.deepEqual(await loadIgnorePatterns(dir, join(dir, 'Dockerfile')), []);
    });
  });
});
