import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ago, bytes, COLOUR, formatDelayed, formatReload, formatRetry, formatStatus, millis, NO_COLOUR, span, until, uptime, wantColour } from '../../src/ctl/format';
import { NOW, sampleStatus } from './sample';

const ESC = '\x1b';
const strip = (s: string): string => s.replace(new RegExp(`${ESC}\\[[0-9;]*m`, 'g'), '');

describe('times in words', () => {
  test('one unit, rounded down', () => {
    assert.equal(span(0), '0 s');
    assert.equal(span(12_900), '12 s');
    assert.equal(span(89_000), '89 s');
    assert.equal(span(3 * 60_000 + 59_000), '3 min');
    assert.equal(span(5 * 3600_000), '5 h');
    assert.equal(span(3 * 86400_000), '3 d');
    assert.equal(span(-5000), '0 s');
  });

  test('ago and until', () => {
    assert.equal(ago(NOW - 180_000, NOW), '3 min ago');
    assert.equal(ago(NOW - 200, NOW), 'just now');
    assert.equal(until(NOW + 12_000, NOW), 'in 12 s');
    assert.equal(until(NOW - 3000, NOW), 'now', 'an overdue attempt is due now');
  });

  test('uptime in two units', () => {
    assert.equal(uptime(7), '7 s');
    assert.equal(uptime(192), '3 min 12 s');
    assert.equal(uptime(2 * 3600 + 5 * 60 + 9), '2 h 5 min');
    assert.equal(uptime(3 * 86400 + 4 * 3600), '3 d 4 h');
  });

  test('milliseconds and bytes', () => {
    assert.equal(millis(null), '-');
    assert.equal(millis(0.84), '0.8 ms');
    assert.equal(millis(31.4), '31 ms');
    assert.equal(millis(1250), '1.3 s');
    assert.equal(bytes(512), '512 B');
    assert.equal(bytes(1536), '1.5 KiB');
    assert.equal(bytes(3 * 1024 * 1024), '3.0 MiB');
    assert.equal(bytes(null), '?');
  });
});

const TABLE = [
  'gatewayc 0.1.0 (pid 4242), up 2 d 5 h, host id msu1',
  'config: /etc/gatewayc/gatewayc.conf',
  'peers:  3 in /etc/gatewayc/hosts.tab: 2 up, 1 down',
  '',
  'PEER   STATE      KEY       SESSIONS      QUEUE  FAILS  NEXT TRY  HANDSHAKE  P50     P99    DELAYED  REQUESTS  CON_LOST  LAST ERROR',
  'msul2  up 3 h     insecure  3/4 (2 busy)  1      0/5    -         14 ms      0.8 ms  12 ms  0        88211     0         -',
  'ucsd1  up 39 min  insecure  1/4           0      0/5    -         14 ms      31 ms   1.3 s  0        1520      1         40 min ago: peer closed the connection',
  'fsu3   down       insecure  0/4           0      5/5    in 12 s   -          -       -      3        7         7         48 s ago: connection refused by 10.0.0.3:5663 (is lond running?)',
];

describe('status table', () => {
  test('header, then one aligned line per peer with every column the issue lists', () => {
    assert.equal(formatStatus(sampleStatus(), { now: NOW, paint: NO_COLOUR }), `${TABLE.join('\n')}\n`);
  });

  test('no colour codes unless asked for', () => {
    assert.ok(!formatStatus(sampleStatus(), { now: NOW, paint: NO_COLOUR }).includes(ESC));
  });

  test('colour marks states and errors without moving a column', () => {
    const out = formatStatus(sampleStatus(), { now: NOW, paint: COLOUR });
    assert.equal(strip(out), `${TABLE.join('\n')}\n`);
    const lines = out.split('\n');
    assert.ok(lines[5]?.includes(`${ESC}[32mup 3 h`), 'up is green');
    assert.ok(lines[7]?.includes(`${ESC}[31mdown`), 'down is red');
    assert.ok(lines[7]?.includes(`${ESC}[31m48 s ago: connection refused`), 'the error of a down peer is red');
  });

  test('only the peers asked for, in the order asked', () => {
    const lines = formatStatus(sampleStatus(), { now: NOW, paint: NO_COLOUR, only: ['fsu3', 'msul2'] }).trimEnd().split('\n');
    assert.deepEqual(lines.slice(5).map((l) => l.split(' ')[0]), ['fsu3', 'msul2']);
    assert.equal(lines[2], 'peers:  3 in /etc/gatewayc/hosts.tab: 2 up, 1 down', 'the header still counts every peer');
  });

  test('busy and opening sessions', () => {
    const st = sampleStatus();
    (st.peers[2] as (typeof st.peers)[0]).sessions = { open: 0, busy: 0, opening: 2, max: 4 };
    (st.peers[2] as (typeof st.peers)[0]).state = 'connecting';
    const line = formatStatus(st, { now: NOW, paint: NO_COLOUR }).split('\n')[7] as string;
    assert.match(line, /^fsu3 +connecting +insecure +0\/4 \(2 opening\) /);
  });

  test('no peers: says which file to edit instead of an empty table', () => {
    const st = { ...sampleStatus(), peers: [] };
    const out = formatStatus(st, { now: NOW, paint: NO_COLOUR });
    assert.ok(!out.includes('PEER'), 'no table header');
    assert.match(out, /No peers configured: add the other servers of the network to \/etc\/gatewayc\/hosts\.tab .*systemctl reload gatewayc/);
  });
});

describe('colour decision', () => {
  test('a terminal gets colour unless NO_COLOR is set or TERM is dumb', () => {
    assert.equal(wantColour(true, {}), true);
    assert.equal(wantColour(false, {}), false, 'a pipe or a file never gets colour');
    assert.equal(wantColour(true, { NO_COLOR: '1' }), false);
    assert.equal(wantColour(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
    assert.equal(wantColour(true, { TERM: 'dumb' }), false);
  });
});

describe('other commands', () => {
  test('reload: one summary line', () => {
    assert.equal(formatReload({ ok: true, added: ['a', 'b'], removed: ['c'], reconnected: [], warnings: [] }), 'reloaded: added a, b; removed c\n');
    assert.equal(formatReload({ ok: true, added: [], removed: [], reconnected: [], warnings: [] }), 'reloaded: no peers added, removed or reconnected\n');
    const w = formatReload({ ok: true, added: [], removed: [], reconnected: ['x'], warnings: ['w1', 'w2'] });
    assert.equal(w.split('\n').length, 2, 'one line, even with warnings');
    assert.match(w, /^reloaded: reconnected x \(2 warnings: see gatewayctl check/);
  });

  test('retry: names the peers', () => {
    assert.match(formatRetry(['a', 'b']), /a, b\n$/);
    assert.equal(formatRetry([]), 'retry: no peers configured\n');
  });

  test('delayed: name, peer, age, size, and a total', () => {
    const out = formatDelayed(
      [
        { name: '1700000000_12.fsu3', peer: 'fsu3', size: 2048, mtime: NOW - 3 * 60_000, rejected: null },
        { name: 'x.ucsd1', peer: 'ucsd1', size: null, mtime: null, rejected: null },
      ],
      '/var/spool/gatewayc/delayed',
      NOW,
    );
    assert.equal(
      out,
      [
        'NAME                PEER   AGE    SIZE',
        '1700000000_12.fsu3  fsu3   3 min  2.0 KiB',
        'x.ucsd1             ucsd1  ?      ?',
        '',
        '2 messages waiting (2.0 KiB) in /var/spool/gatewayc/delayed',
        '',
      ].join('\n'),
    );
    assert.equal(formatDelayed([], '/d', NOW, 'fsu3'), 'No delayed messages waiting for fsu3 in /d.\n');
  });

  test('delayed: more than the daemon lists says how many in all, and how many are listed', () => {
    const out = formatDelayed(
      [
        { name: '1.fsu3', peer: 'fsu3', size: 10, mtime: NOW, rejected: null },
        { name: 'rejected/2.fsu3', peer: 'fsu3', size: 0, mtime: NOW, rejected: 'empty' },
      ],
      '/d',
      NOW,
      undefined,
      { waiting: 41_999, setAside: 9 },
    );
    assert.match(out, /^42000 messages waiting in \/d; the oldest 1 listed \(10 B\)$/m);
    assert.match(out, /^10 entries set aside, never delivered \(look at them, then remove them\); 1 listed:$/m);
  });
});

// Text from the daemon, a peer, a spool file name or a config file reaches the
// administrator's terminal: nothing in it may act on the terminal, break a line or
// reorder what is shown.
/** What a terminal would act on (C0 but \n, DEL, C1) or that reorders or hides text. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u;

function assertSafe(out: string): void {
  const m = UNSAFE.exec(out);
  assert.equal(m, null, `raw U+${m?.[0].codePointAt(0)?.toString(16).padStart(4, '0')} at ${m?.index}: ${JSON.stringify(out)}`);
}

describe('hostile text is shown, never obeyed', () => {
  const TITLE = '\x1b]0;owned\x07';
  const CLEAR = '\x1b[2J\x1b[H';
  const FAKE_ROW = '\rfsu3  up 3 h     ssl';

  test('delayed: file names with ESC, BEL, CR and LF stay on their row, escaped', () => {
    const files = [
      { name: `${TITLE}.fsu3`, peer: 'fsu3', size: 1, mtime: NOW, rejected: null },
      { name: `${CLEAR}x\nmsul2  peer.fsu3`, peer: 'fsu3', size: 2, mtime: NOW, rejected: null },
      { name: `a${FAKE_ROW}.fsu3`, peer: `fsu3\u009b2J`, size: 3, mtime: NOW, rejected: null },
    ];
    const out = formatDelayed(files, `/spool\x1b[31m`, NOW);
    assertSafe(out);
    const lines = out.split('\n');
    assert.equal(lines.length, 1 + files.length + 3, 'header, one row per file, blank, total, and the final newline');
    assert.ok(lines[1]?.startsWith('\\x1b]0;owned\\x07.fsu3 '), lines[1]);
    assert.ok(lines[2]?.startsWith('\\x1b[2J\\x1b[Hx\\nmsul2  peer.fsu3 '), lines[2]);
    assert.match(lines[3] ?? '', /^a\\rfsu3 {2}up 3 h {5}ssl\.fsu3 +fsu3\\x9b2J /);
    assert.match(lines[5] ?? '', /in \/spool\\x1b\[31m$/);
  });

  test('status: C1 controls and bidi overrides in a last error, escapes in ids and paths', () => {
    const st = sampleStatus();
    st.hostId = `msu1${TITLE}`;
    st.configFiles = ['/etc/gatewayc/gatewayc.conf\n\u202eevil'];
    st.hostsFile = `/etc/hosts.tab${CLEAR}`;
    st.version = '0.1.0\x1bc';
    const p = st.peers[2] as (typeof st.peers)[0];
    p.lastError = 'peer answered \u009b2J\u009d0;owned\u009c then \u0085 and \u202e\u2066x\u2069 \x7f';
    p.id = `fsu3${FAKE_ROW}`;
    p.keyMode = 'ssl\u200f';
    p.state = 'down\x08\x08up' as typeof p.state; // what a hostile daemon could send
    for (const paint of [NO_COLOUR, COLOUR]) {
      const out = formatStatus(st, { now: NOW, paint });
      assertSafe(strip(out));
      const lines = strip(out).split('\n');
      assert.equal(lines.length, TABLE.length + 1, 'no row added, none split');
      assert.ok(lines[7]?.startsWith('fsu3\\rfsu3  up 3 h     ssl  '), lines[7]);
      assert.ok(lines[7]?.endsWith('peer answered \\x9b2J\\x9d0;owned\\x9c then \\x85 and \\u202e\\u2066x\\u2069 \\x7f'), lines[7]);
      assert.equal(lines[0], 'gatewayc 0.1.0\\x1bc (pid 4242), up 2 d 5 h, host id msu1\\x1b]0;owned\\x07');
      assert.equal(lines[1], 'config: /etc/gatewayc/gatewayc.conf\\n\\u202eevil');
    }
    // The only escape sequences left are the colours we add.
    const coloured = formatStatus(st, { now: NOW, paint: COLOUR });
    assert.ok(!strip(coloured).includes(ESC));
  });

  test('reload and retry: peer ids from the daemon are escaped', () => {
    const r = formatReload({ ok: true, added: [`a${CLEAR}`], removed: ['b\nreloaded: all fine'], reconnected: [], warnings: [] });
    assertSafe(r);
    assert.equal(r.split('\n').length, 2);
    const t = formatRetry([`x${TITLE}`, 'y\u009b']);
    assertSafe(t);
    assert.equal(t, 'retry: attempt counters reset, peers that are not up reconnect now: x\\x1b]0;owned\\x07, y\\x9b\n');
  });
});

test('delayed: entries set aside keep their row too, with the reason escaped', () => {
  const out = formatDelayed([{ name: 'x\x1b[2J.fsu3', peer: '', size: 1, mtime: NOW, rejected: 'not a regular file\r\n\u009b31m' }], '/spool', NOW);
  assert.equal(UNSAFE.exec(out), null, JSON.stringify(out));
  assert.match(out, /\nx\\x1b\[2J\.fsu3 +- +0 s +1 B +not a regular file\\r\\n\\x9b31m\n$/);
});
