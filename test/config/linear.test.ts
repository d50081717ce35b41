// Config files and hosts.tab are parsed on the daemon's event loop (start and every
// reload), so a hostile or broken line must cost time in proportion to its length. Each
// test builds one pathological shape at two sizes and compares the cost: linear parsing
// costs ~10× on 10× the input, a backtracking regex ~100× or far more. No absolute times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfSource, readConf } from '../../src/config/conf';
import { parseHostsTab, peerSocketPath } from '../../src/config/hosts';
import { buildSettings } from '../../src/config/settings';
import { bestCosts, describeScaling, scaling } from '../support/scaling';

const FILE = '/etc/gatewayc/gatewayc.conf';

/** readConf on one in-memory file; a ConfigError is an outcome like any other here. */
function parseConf(text: string, dir: Record<string, string[]> = {}): void {
  const src: ConfSource = {
    readFile: (p) => {
      if (p === FILE) return text;
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
    },
    listDir: (d) => dir[d] ?? [],
  };
  try {
    readConf([FILE], src);
  } catch {
    // bad line: the error is fine, the time it took is what is measured
  }
}

/** [what, the text at size n, n]: the large input is 10 n. */
const CONF_SHAPES: [string, (n: number) => string, number][] = [
  ['100k spaces ending in a word', (n) => `${' '.repeat(n)}x\n`, 10_000],
  ['100k spaces between two words', (n) => `PerlSetVar gatewaycLogLevel a${' '.repeat(n)}b\n`, 10_000],
  ['100k tabs between words', (n) => `PerlSetVar${'\t'.repeat(n)}gatewaycLogLevel${'\t'.repeat(n)}info${'\t'.repeat(n)}x\n`, 10_000],
  ['100k spaces after a directive with no value', (n) => `Include${' '.repeat(n)}\u00a0\n`, 10_000],
  ['a run of 100k backslashes', (n) => `PerlSetVar gatewaycLogLevel "${'\\'.repeat(n)}"\n`, 10_000],
  ['backslashes and spaces, alternating', (n) => `${'\\ '.repeat(n / 2)}x\n`, 10_000],
  // Kept to 10k lines: beyond that, allocating one string per line outgrows V8's young
  // generation and costs more per line whatever the parser does.
  ['10k continuation lines', (n) => `PerlSetVar gatewaycLogLevel ${'a \\\n'.repeat(n / 4)}x\n`, 4_000],
  ['a 1 MB line of mixed blanks, words and backslashes', (n) => `PerlSetVar k ${'a \t\\'.repeat(n / 4)} \n`, 100_000],
];

for (const [name, make, n] of CONF_SHAPES) {
  test(`config parsing is linear: ${name}`, () => {
    const s = scaling(make, (text) => parseConf(text), n);
    assert.ok(s.ratio < 40, describeScaling(name, s));
  });
}

test('Include wildcards are matched in linear time, however many stars', () => {
  // A backtracking matcher costs ~n^k on k stars: three are enough to show it (with eight,
  // the old regex matcher never finished at n = 200).
  const s = scaling(
    (n) => ({ text: 'Include /etc/gatewayc/conf.d/*a*a*ab\n', dir: { '/etc/gatewayc/conf.d': ['a'.repeat(n)] } }),
    ({ text, dir }) => parseConf(text, dir),
    200,
  );
  assert.ok(s.ratio < 40, describeScaling('a name of n letters against 3 stars', s));
});

test('hosts.tab parsing is linear: blanks, colons, long names', () => {
  const shapes: [string, (n: number) => string][] = [
    ['spaces', (n) => `${' '.repeat(n)}x\n`],
    ['colons', (n) => `p1${':'.repeat(n)}x\n`],
    ['blanks inside fields', (n) => `p1 ${' '.repeat(n)}x:dom:lib:name:127.0.0.2${' '.repeat(n)}x\n`],
  ];
  for (const [name, make] of shapes) {
    const s = scaling(make, (text) => parseHostsTab(text, '/etc/gatewayc/hosts.tab', { ownId: 'me', sockDir: '/run/gatewayc/sockets' }), 10_000);
    assert.ok(s.ratio < 40, describeScaling(name, s));
  }
  const s = scaling((n) => `${'/'.repeat(n)}x`, (dir) => peerSocketPath(dir, 'p1'), 10_000);
  assert.ok(s.ratio < 40, describeScaling('a socket directory of slashes', s));
});

test('a 1 MB unknown gatewayc key costs no more than reading it (no edit distance over all of it)', () => {
  const text = `PerlSetVar lonHostID me\nPerlSetVar gatewayc${'x'.repeat(1_000_000)} 1\n`;
  const src: ConfSource = { readFile: () => text, listDir: () => [] };
  const conf = readConf([FILE], src);
  // Turning the parsed values into settings should cost less than parsing the text did.
  const [read, build] = bestCosts([() => readConf([FILE], src), () => buildSettings(conf)], { stopAfter: ([r]) => [Infinity, r * 200] });
  assert.ok(build / read < 10, `settings from a 1 MB unknown key cost ${(build / read).toFixed(1)}× reading it (${read.toFixed(2)} ms → ${build.toFixed(2)} ms)`);
  assert.equal(buildSettings(conf).warnings.length, 1, 'still a warning');
});
