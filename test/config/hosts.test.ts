import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerEntry, parseHostsTab, validPeerId } from '../../src/config/hosts';

const F = '/etc/gatewayc/hosts.tab';
const parse = (lines: string[], opts: { ownId: string; sockDir?: string } = { ownId: 'self' }) => parseHostsTab(lines.join('\n'), F, opts);
const brief = (p: PeerEntry[]): string[][] => p.map((e) => [e.id, e.address, String(e.line)]);

test('validPeerId (table)', () => {
  const cases: [string, string | undefined][] = [
    ['msu1', undefined],
    ['msul1-x_y.z', undefined],
    ['ü'.repeat(32), undefined], //            64 bytes
    ['x'.repeat(64), undefined],
    ['', 'is empty'],
    ['.', 'must not be "." or ".."'],
    ['..', 'must not be "." or ".."'],
    ['...', undefined],
    ['a/b', 'must not contain "/"'],
    ['/', 'must not contain "/"'],
    ['a\0b', 'must not contain control characters'],
    ['a\tb', 'must not contain control characters'],
    ['a\x7fb', 'must not contain control characters'],
    ['a\u0085b', 'must not contain control characters'],
    ['a b', 'must not contain whitespace'],
    ['a\u00a0b', 'must not contain whitespace'],
    ['a\u2003b', 'must not contain whitespace'],
    ['x'.repeat(65), 'is longer than 64 bytes'],
    ['ü'.repeat(33), 'is longer than 64 bytes'], // 33 characters, 66 bytes
  ];
  for (const [id, want] of cases) assert.equal(validPeerId(id), want, JSON.stringify(id));
});

test('both formats and the address rule (table)', () => {
  const cases: [string, Partial<PeerEntry>][] = [
    ['msu1:msu:library:lon.msu.edu:35.8.63.51', { id: 'msu1', domain: 'msu', role: 'library', hostname: 'lon.msu.edu', address: '35.8.63.51' }],
    ['msu2:msu:access:lon2.msu.edu:https:msu.internal', { hostname: 'lon2.msu.edu', address: 'lon2.msu.edu' }],
    ['msu2:msu:access:lon2.msu.edu:http:msu.internal:x', { address: 'lon2.msu.edu' }],
    ['msu2:msu:access:lon2.msu.edu:HTTPS', { address: 'lon2.msu.edu' }],
    ['msu2:msu:access:lon2.msu.edu:', { address: 'lon2.msu.edu' }],
    ['msu2:msu:access:lon2.msu.edu', { address: 'lon2.msu.edu' }],
    ['msu2:msu:access:lon2.msu.edu:10.0.0.2:https:intdom', { address: '10.0.0.2' }],
    ['msu2:msu:access:lon2.msu.edu:other.host.name', { address: 'other.host.name' }],
    ['msu2:msu:access::10.0.0.2', { hostname: '', address: '10.0.0.2' }],
    ['  msu2 : msu : access : lon2.msu.edu : 10.0.0.2  ', { id: 'msu2', domain: 'msu', role: 'access', hostname: 'lon2.msu.edu', address: '10.0.0.2' }],
    ['msu2:msu:access:lon2.msu.edu:10.0.0.2\r', { address: '10.0.0.2' }],
    ['msu2:::host', { domain: '', role: '', address: 'host' }],
  ];
  for (const [line, want] of cases) {
    const { peers, diags } = parse(['# header', line]);
    assert.deepEqual(diags, [], line);
    assert.equal(peers.length, 1, line);
    assert.deepEqual({ ...peers[0], ...want }, peers[0], line);
    assert.equal(peers[0].line, 2, line);
  }
});

test('comments, blank lines, CRLF, BOM; peers in file order with their line numbers', () => {
  const text = '\uFEFF# LON-CAPA hosts\r\n\r\n   \r\nb:d:r:hb:1.1.1.2\r\n  # indented comment\r\na:d:r:ha:1.1.1.1\r\nc:d:r:hc:https:x\r\n';
  const { peers, diags } = parseHostsTab(text, F, { ownId: 'self' });
  assert.deepEqual(diags, []);
  assert.deepEqual(brief(peers), [['b', '1.1.1.2', '4'], ['a', '1.1.1.1', '6'], ['c', 'hc', '7']]);
});

test('malformed lines: a warning with the line number each, the other peers survive', () => {
  const { peers, diags } = parse([
    'good1:d:r:h:1.1.1.1', //      1
    'justone', //                  2
    'a:b:c', //                    3
    ':d:r:h:1.1.1.1', //           4 empty id
    'a/b:d:r:h:1.1.1.1', //        5 invalid id
    'x y:d:r:h:1.1.1.1', //        6 whitespace inside the id
    'noaddr:d:r::', //             7 no address at all
    'proto:d:r::https:intdom', //  8 protocol but no host name
    'sp:d:r:h:1.1.1.1 2', //       9 whitespace inside the address
    '..:d:r:h:1.1.1.1', //        10
    'good2:d:r:h:https', //       11
  ]);
  assert.deepEqual(brief(peers), [['good1', '1.1.1.1', '1'], ['good2', 'h', '11']]);
  assert.ok(diags.every((d) => d.file === F && d.severity === 'warning'));
  assert.deepEqual(diags.map((d) => d.line), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const msg = (line: number): string => diags.find((d) => d.line === line)?.message ?? '';
  assert.match(msg(2), /^malformed line skipped: expected id:domain:role:name:address .*got 1 field$/);
  assert.match(msg(3), /got 3 fields$/);
  assert.equal(msg(4), 'line skipped: peer id "" is empty');
  assert.equal(msg(5), 'line skipped: peer id "a/b" must not contain "/"');
  assert.equal(msg(6), 'line skipped: peer id "x y" must not contain whitespace');
  assert.equal(msg(7), 'line skipped: peer noaddr has neither a host name nor an address');
  assert.equal(msg(8), 'line skipped: peer proto has neither a host name nor an address');
  assert.equal(msg(9), 'line skipped: peer sp has an invalid address "1.1.1.1 2"');
  assert.equal(msg(10), 'line skipped: peer id ".." must not be "." or ".."');
});

test('duplicate ids: a warning naming both lines, the last wins at its own position', () => {
  const { peers, diags } = parse([
    'a:d:r:h:10.0.0.1', // 1
    'b:d:r:h:10.0.0.2', // 2
    'a:d:r:h:10.0.0.3', // 3
    'c:d:r:h:10.0.0.4', // 4
    'a:d:r:h:10.0.0.5', // 5
  ]);
  assert.deepEqual(brief(peers), [['b', '10.0.0.2', '2'], ['c', '10.0.0.4', '4'], ['a', '10.0.0.5', '5']]);
  assert.deepEqual(diags.map((d) => [d.line, d.message]), [
    [3, 'duplicate peer id a (also on line 1); line 3 is used'],
    [5, 'duplicate peer id a (also on line 3); line 5 is used'],
  ]);
});

test('the own id is skipped without a warning', () => {
  const { peers, diags } = parse(['msu1:d:r:h:10.0.0.1', 'msu2:d:r:h:10.0.0.2', 'msu1:d:r:h:10.0.0.1'], { ownId: 'msu1' });
  assert.deepEqual(brief(peers), [['msu2', '10.0.0.2', '2']]);
  assert.deepEqual(diags, []);
  // An empty own id (not required) skips nothing and still rejects empty ids.
  const e = parse([':d:r:h:1.1.1.1'], { ownId: '' });
  assert.equal(e.peers.length, 0);
  assert.equal(e.diags.length, 1);
});

test('sockDir: ids whose socket path exceeds 107 bytes are skipped with a message saying so', () => {
  const sockDir = '/run/' + 's'.repeat(40); // 45 bytes; "<dir>/" is 46, so 61 bytes of id fit
  const fits = 'f'.repeat(61);
  const tooLong = 'g'.repeat(62);
  const { peers, diags } = parse([`${fits}:d:r:h:1.1.1.1`, `${tooLong}:d:r:h:1.1.1.1`], { ownId: 'self', sockDir });
  assert.deepEqual(peers.map((p) => p.id), [fits]);
  assert.equal(diags.length, 1);
  assert.equal(diags[0].line, 2);
  assert.equal(diags[0].message, `line skipped: peer id "${tooLong}" makes the socket path ${sockDir}/${tooLong} 108 bytes long; a UNIX socket path can be at most 107 bytes (shorten lonSockDir or the id)`);
  // A trailing slash on sockDir does not count twice; without sockDir there is no such check.
  assert.equal(parse([`${fits}:d:r:h:1.1.1.1`], { ownId: 'self', sockDir: sockDir + '/' }).peers.length, 1);
  assert.equal(parse([`${tooLong}:d:r:h:1.1.1.1`]).peers.length, 1);
});

test('empty and comment-only files give no peers and no warnings', () => {
  for (const text of ['', '\n\n', '# nothing\n', '\r\n']) {
    assert.deepEqual(parseHostsTab(text, F, { ownId: 'x' }), { peers: [], diags: [] });
  }
});
