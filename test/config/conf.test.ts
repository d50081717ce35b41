import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ConfResult, ConfSource, MAX_INCLUDE_DEPTH, readConf, wildcardMatcher } from '../../src/config/conf';
import { ConfigError } from '../../src/config/diag';

function errno(code: string, what: string, p: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${what}, open '${p}'`), { code });
}

/** An in-memory file tree: keys are file paths, directories are implied. */
function memSource(files: Record<string, string>, denied: string[] = []): ConfSource & { reads: string[] } {
  const reads: string[] = [];
  const isDir = (p: string): boolean => Object.keys(files).some((f) => f.startsWith(p.replace(/\/+$/, '') + '/'));
  return {
    reads,
    readFile(p) {
      reads.push(p);
      if (denied.includes(p)) throw errno('EACCES', 'permission denied', p);
      if (p in files) return files[p];
      if (isDir(p)) throw errno('EISDIR', 'illegal operation on a directory', p);
      throw errno('ENOENT', 'no such file or directory', p);
    },
    listDir(d) {
      if (denied.includes(d)) throw errno('EACCES', 'permission denied', d);
      if (!isDir(d)) throw errno('ENOENT', 'no such file or directory', d);
      const prefix = d.replace(/\/+$/, '') + '/';
      const names = new Set<string>();
      for (const f of Object.keys(files)) if (f.startsWith(prefix)) names.add(f.slice(prefix.length).split('/')[0]);
      // Deliberately unsorted: readConf must sort.
      return [...names].reverse();
    },
  };
}

const values = (r: ConfResult): Record<string, string> => Object.fromEntries([...r.values].map(([k, v]) => [k, v.value]));

function confError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

test('PerlSetVar lines: value parsing table', () => {
  const cases: [string, string][] = [
    ['PerlSetVar k v', 'v'],
    ['perlsetvar k v', 'v'],
    ['PERLSETVAR k v', 'v'],
    ['   PerlSetVar\tk\t  v  ', 'v'],
    ['PerlSetVar k a b  c   ', 'a b  c'],
    ['PerlSetVar k "a b"', 'a b'],
    ['PerlSetVar k "a \\"q\\" b"', 'a "q" b'],
    ['PerlSetVar k "a\\\\b"', 'a\\b'],
    ['PerlSetVar k "a\\nb"', 'a\\nb'],
    ['PerlSetVar k ""', ''],
    ['PerlSetVar k a"b"', 'a"b"'],
    ['PerlSetVar k v # not a comment', 'v # not a comment'],
    ['PerlSetVar k v\r', 'v'],
  ];
  for (const [line, want] of cases) {
    const r = readConf(['/c.conf'], memSource({ '/c.conf': line + '\n' }));
    assert.equal(r.values.get('k')?.value, want, line);
  }
});

test('keys are case-sensitive, directives are not', () => {
  const r = readConf(['/c.conf'], memSource({ '/c.conf': 'PerlSetVar lonHostID a\nPerlSetVar lonhostid b\n' }));
  assert.deepEqual(values(r), { lonHostID: 'a', lonhostid: 'b' });
});

test('comments, blank lines, CRLF and a BOM; line numbers stay right', () => {
  const text = '\uFEFF# comment\r\n\r\n   # indented comment\r\n\tPerlSetVar a 1\r\nPerlSetVar b 2';
  const r = readConf(['/c.conf'], memSource({ '/c.conf': text }));
  assert.deepEqual(values(r), { a: '1', b: '2' });
  assert.deepEqual(r.values.get('a'), { value: '1', file: '/c.conf', line: 4 });
  assert.deepEqual(r.values.get('b'), { value: '2', file: '/c.conf', line: 5 });
  assert.deepEqual(r.warnings, []);
});

test('trailing-backslash continuation lines', () => {
  const text = [
    'PerlSetVar a \\', //     1
    '    one', //             2
    'PerlSetVar b x\\', //    3
    'y\\  ', //               4 (trailing blanks after the backslash still continue)
    'z', //                   5
    'PerlSetVar c 3', //      6
    'PerlSetVar d \\', //     7 (continued at end of file)
  ].join('\n');
  const r = readConf(['/c.conf'], memSource({ '/c.conf': text + '\\' }));
  assert.equal(r.values.get('a')?.value, 'one');
  assert.equal(r.values.get('a')?.line, 1);
  assert.equal(r.values.get('b')?.value, 'xyz');
  assert.equal(r.values.get('b')?.line, 3);
  assert.equal(r.values.get('c')?.line, 6);
  // "PerlSetVar d " continued into nothing: no value.
  const e = confError(() => readConf(['/c.conf'], memSource({ '/c.conf': text })));
  assert.equal(e.diag.line, 7);
  assert.match(e.diag.message, /PerlSetVar d has no value/);
});

test('later settings win, within a file and across files in the order given', () => {
  const src = memSource({
    '/a.conf': 'PerlSetVar k 1\nPerlSetVar k 2\nPerlSetVar only_a x\n',
    '/b.conf': '\nPerlSetVar k 3\n',
  });
  const r = readConf(['/a.conf', '/b.conf'], src);
  assert.deepEqual(r.values.get('k'), { value: '3', file: '/b.conf', line: 2 });
  assert.deepEqual(r.values.get('only_a'), { value: 'x', file: '/a.conf', line: 3 });
  assert.deepEqual(r.files, ['/a.conf', '/b.conf']);
  const r2 = readConf(['/b.conf', '/a.conf'], src);
  assert.deepEqual(r2.values.get('k'), { value: '2', file: '/a.conf', line: 2 });
});

test('other Apache directives are ignored; PerlSetVar inside blocks counts', () => {
  const text = [
    '<IfModule mod_perl.c>',
    '  PerlModule Apache::lonnet',
    '  PerlSetVar lonHostID msu1',
    '  <Location /adm>',
    '    PerlSetVar lonTabDir /home/httpd/lonTabs',
    '  </Location>',
    '</IfModule>',
    'Alias /res /home/httpd/res',
    'PerlSetVarX nope value',
    'PerlAddVar k v',
    'DirectoryIndex index.html',
  ].join('\n');
  const r = readConf(['/l.conf'], memSource({ '/l.conf': text }));
  assert.deepEqual(values(r), { lonHostID: 'msu1', lonTabDir: '/home/httpd/lonTabs' });
  assert.deepEqual(r.warnings, []);
});

test('syntax errors name file and line', () => {
  const cases: [string, RegExp][] = [
    ['PerlSetVar lonHostID', /^PerlSetVar lonHostID has no value$/],
    ['PerlSetVar lonHostID    ', /^PerlSetVar lonHostID has no value$/],
    ['PerlSetVar', /^PerlSetVar needs a key and a value$/],
    ['PerlSetVar k "abc', /^PerlSetVar k: missing closing quote/],
    ['PerlSetVar k "a" b', /^PerlSetVar k: unexpected text after the closing quote/],
    ['Include', /^Include needs a path$/],
    ['IncludeOptional ""', /^IncludeOptional needs a path$/],
    ['Include "x.conf', /^Include: missing closing quote/],
  ];
  for (const [line, re] of cases) {
    const e = confError(() => readConf(['/etc/g.conf'], memSource({ '/etc/g.conf': '# x\n\n' + line + '\n' })));
    assert.equal(e.diag.file, '/etc/g.conf', line);
    assert.equal(e.diag.line, 3, line);
    assert.equal(e.diag.severity, 'error');
    assert.match(e.diag.message, re, line);
    assert.equal(e.message, `/etc/g.conf:3: ${e.diag.message}`);
  }
});

test('unreadable top-level file: "cannot read FILE: reason", no line', () => {
  const e = confError(() => readConf(['/etc/ok.conf', '/etc/missing.conf'], memSource({ '/etc/ok.conf': 'PerlSetVar a 1' })));
  assert.equal(e.diag.file, '/etc/missing.conf');
  assert.equal(e.diag.line, undefined);
  assert.equal(e.diag.message, 'cannot read /etc/missing.conf: no such file or directory');
  const d = confError(() => readConf(['/etc/ok.conf'], memSource({ '/etc/ok.conf': '' }, ['/etc/ok.conf'])));
  assert.equal(d.diag.message, 'cannot read /etc/ok.conf: permission denied');
});

test('Include: relative to the including file, in include order, recorded in files', () => {
  const src = memSource({
    '/etc/gatewayc/gatewayc.conf': 'PerlSetVar k top1\nInclude sub/inc.conf\nPerlSetVar after top\n',
    '/etc/gatewayc/sub/inc.conf': 'PerlSetVar k inc\nPerlSetVar after inc\nPerlSetVar nested_from x\nInclude deeper.conf\n',
    '/etc/gatewayc/sub/deeper.conf': 'PerlSetVar deep yes\n',
    '/etc/loncapa.conf': 'PerlSetVar lonHostID msu1\n',
  });
  const r = readConf(['/etc/gatewayc/gatewayc.conf'], src);
  assert.deepEqual(r.values.get('k'), { value: 'inc', file: '/etc/gatewayc/sub/inc.conf', line: 1 });
  assert.deepEqual(r.values.get('after'), { value: 'top', file: '/etc/gatewayc/gatewayc.conf', line: 3 });
  assert.equal(r.values.get('deep')?.file, '/etc/gatewayc/sub/deeper.conf');
  assert.deepEqual(r.files, ['/etc/gatewayc/gatewayc.conf', '/etc/gatewayc/sub/inc.conf', '/etc/gatewayc/sub/deeper.conf']);

  // Absolute paths, quoted paths, and a relative top-level file.
  const src2 = memSource({
    'rel/g.conf': 'Include "/etc/loncapa.conf"\nInclude local.conf\n',
    'rel/local.conf': 'PerlSetVar x 1\n',
    '/etc/loncapa.conf': 'PerlSetVar lonHostID msu1\n',
  });
  const r2 = readConf(['rel/g.conf'], src2);
  assert.deepEqual(values(r2), { lonHostID: 'msu1', x: '1' });
  assert.deepEqual(r2.files, ['rel/g.conf', '/etc/loncapa.conf', 'rel/local.conf']);
});

test('Include of a missing or unreadable file: error at the Include line naming the path', () => {
  const src = memSource({ '/etc/g.conf': 'PerlSetVar a 1\nInclude nothere.conf\n' });
  const e = confError(() => readConf(['/etc/g.conf'], src));
  assert.equal(e.diag.file, '/etc/g.conf');
  assert.equal(e.diag.line, 2);
  assert.equal(e.diag.message, 'cannot include /etc/nothere.conf: no such file or directory');

  const denied = memSource({ '/etc/g.conf': 'IncludeOptional secret.conf\n', '/etc/secret.conf': '' }, ['/etc/secret.conf']);
  const d = confError(() => readConf(['/etc/g.conf'], denied));
  assert.equal(d.diag.line, 1);
  assert.equal(d.diag.message, 'cannot include /etc/secret.conf: permission denied');

  const dir = memSource({ '/etc/g.conf': 'Include conf.d\n', '/etc/conf.d/a.conf': '' });
  assert.match(confError(() => readConf(['/etc/g.conf'], dir)).diag.message, /^cannot include \/etc\/conf\.d: /);
});

test('IncludeOptional of a missing file (or directory) is skipped silently', () => {
  const src = memSource({ '/etc/g.conf': 'IncludeOptional nothere.conf\nIncludeOptional /no/dir/x.conf\nIncludeOptional /no/dir/*.conf\nPerlSetVar a 1\n' });
  const r = readConf(['/etc/g.conf'], src);
  assert.deepEqual(values(r), { a: '1' });
  assert.deepEqual(r.files, ['/etc/g.conf']);
  assert.deepEqual(r.warnings, []);
});

test('wildcards in the last component: sorted, no dotfiles, subdirectories skipped', () => {
  const src = memSource({
    '/etc/g.conf': 'Include conf.d/*.conf\nInclude conf.d/?.x\n',
    '/etc/conf.d/20-b.conf': 'PerlSetVar k b\nPerlSetVar b 1\n',
    '/etc/conf.d/10-a.conf': 'PerlSetVar k a\nPerlSetVar a 1\n',
    '/etc/conf.d/30-c.conf': 'PerlSetVar k c\n',
    '/etc/conf.d/.hidden.conf': 'PerlSetVar hidden 1\n',
    '/etc/conf.d/notes.txt': 'PerlSetVar txt 1\n',
    '/etc/conf.d/sub.conf/inner.conf': 'PerlSetVar inner 1\n',
    '/etc/conf.d/1.x': 'PerlSetVar one 1\n',
    '/etc/conf.d/12.x': 'PerlSetVar twelve 1\n',
  });
  const r = readConf(['/etc/g.conf'], src);
  assert.deepEqual(values(r), { k: 'c', b: '1', a: '1', one: '1' });
  assert.deepEqual(r.files, ['/etc/g.conf', '/etc/conf.d/10-a.conf', '/etc/conf.d/20-b.conf', '/etc/conf.d/30-c.conf', '/etc/conf.d/1.x']);
});

test('wildcards: no match is fine for both; a missing directory only for IncludeOptional; not in directories', () => {
  const files = { '/etc/conf.d/a.txt': '' };
  for (const d of ['Include', 'IncludeOptional']) {
    const r = readConf(['/etc/g.conf'], memSource({ ...files, '/etc/g.conf': `${d} conf.d/*.conf\nPerlSetVar a 1\n` }));
    assert.deepEqual(values(r), { a: '1' }, d);
  }
  const e = confError(() => readConf(['/etc/g.conf'], memSource({ '/etc/g.conf': '\nInclude /nodir/*.conf\n' })));
  assert.equal(e.diag.line, 2);
  assert.equal(e.diag.message, 'cannot include /nodir/*.conf: cannot list /nodir: no such file or directory');
  const w = confError(() => readConf(['/etc/g.conf'], memSource({ ...files, '/etc/g.conf': 'Include /etc/*/a.txt\n' })));
  assert.equal(w.diag.line, 1);
  assert.match(w.diag.message, /wildcards are only supported in the last path component/);
});

test('include cycles are errors at the Include line; a diamond is not a cycle', () => {
  const self = confError(() => readConf(['/etc/a.conf'], memSource({ '/etc/a.conf': 'PerlSetVar x 1\nInclude a.conf\n' })));
  assert.equal(self.diag.file, '/etc/a.conf');
  assert.equal(self.diag.line, 2);
  assert.equal(self.diag.message, 'include cycle: /etc/a.conf -> /etc/a.conf');

  const loop = memSource({ '/etc/a.conf': 'Include b.conf\n', '/etc/b.conf': '\n\nInclude ./sub/../a.conf\n' });
  const e = confError(() => readConf(['/etc/a.conf'], loop));
  assert.equal(e.diag.file, '/etc/b.conf');
  assert.equal(e.diag.line, 3);
  assert.equal(e.diag.message, 'include cycle: /etc/a.conf -> /etc/b.conf -> /etc/a.conf');

  const wild = memSource({ '/etc/conf.d/a.conf': 'Include *.conf\n' });
  assert.match(confError(() => readConf(['/etc/conf.d/a.conf'], wild)).diag.message, /^include cycle/);

  const diamond = memSource({
    '/etc/top.conf': 'Include l.conf\nInclude r.conf\n',
    '/etc/l.conf': 'Include common.conf\n',
    '/etc/r.conf': 'Include common.conf\n',
    '/etc/common.conf': 'PerlSetVar c 1\n',
  });
  assert.deepEqual(readConf(['/etc/top.conf'], diamond).files, ['/etc/top.conf', '/etc/l.conf', '/etc/common.conf', '/etc/r.conf', '/etc/common.conf']);
});

test(`include depth: ${MAX_INCLUDE_DEPTH} levels are fine, one more is an error`, () => {
  const chain = (n: number): Record<string, string> => {
    const files: Record<string, string> = {};
    for (let i = 0; i < n; i++) files[`/c/${i}.conf`] = `Include ${i + 1}.conf\n`;
    files[`/c/${n}.conf`] = 'PerlSetVar bottom yes\n';
    return files;
  };
  const ok = readConf(['/c/0.conf'], memSource(chain(MAX_INCLUDE_DEPTH)));
  assert.equal(ok.values.get('bottom')?.file, `/c/${MAX_INCLUDE_DEPTH}.conf`);
  const e = confError(() => readConf(['/c/0.conf'], memSource(chain(MAX_INCLUDE_DEPTH + 1))));
  assert.equal(e.diag.file, `/c/${MAX_INCLUDE_DEPTH}.conf`);
  assert.equal(e.diag.line, 1);
  assert.match(e.diag.message, /includes nested more than 16 deep/);
});

test('the in-memory source behaves like the real one (guards the tests above)', () => {
  const src = memSource({ '/d/a': 'x', '/d/e/f': 'y' });
  assert.equal(src.readFile('/d/a'), 'x');
  assert.throws(() => src.readFile('/d/e'), { code: 'EISDIR' });
  assert.throws(() => src.readFile('/d/zz'), { code: 'ENOENT' });
  assert.deepEqual(src.listDir('/d').sort(), ['a', 'e']);
  assert.throws(() => src.listDir('/nope'), { code: 'ENOENT' });
  assert.equal(path.dirname('/d/a'), '/d');
});

test('wildcardMatcher agrees with the regex it replaced (which was exponential in the stars)', () => {
  const reference = (pattern: string) => {
    const re = new RegExp(`^${pattern.split('').map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`, 's');
    return (name: string) => re.test(name) && (!name.startsWith('.') || pattern.startsWith('.'));
  };
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const word = (alphabet: string, max: number): string => Array.from({ length: rnd(max + 1) }, () => alphabet[rnd(alphabet.length)]).join('');
  for (let i = 0; i < 20_000; i++) {
    const pattern = word('ab*?./', 7);
    const name = word('ab./', 9);
    assert.equal(wildcardMatcher(pattern)(name), reference(pattern)(name), `${JSON.stringify(pattern)} against ${JSON.stringify(name)}`);
  }
});
