import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { createLogger, isJournalStream, journalLine, journalPriority } from '../../src/log';

function capture(): { dest: Writable; text: () => string } {
  const chunks: string[] = [];
  const dest = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { dest, text: () => chunks.join('') };
}

/** JOURNAL_STREAM as systemd would set it for this process's stdout. */
function journalEnvForStdout(): NodeJS.ProcessEnv {
  const st = fs.fstatSync(1, { bigint: true });
  return { JOURNAL_STREAM: `${st.dev}:${st.ino}` };
}

test('priorities follow syslog: fatal 2, error 3, warn 4, info 6, debug and trace 7', () => {
  assert.deepEqual([60, 50, 40, 30, 20, 10].map(journalPriority), [2, 3, 4, 6, 7, 7]);
});

test('isJournalStream needs JOURNAL_STREAM to name stdout exactly', () => {
  const env = journalEnvForStdout();
  assert.equal(isJournalStream(env), true);
  const [dev, ino] = (env.JOURNAL_STREAM as string).split(':');
  assert.equal(isJournalStream({ JOURNAL_STREAM: `${dev}:${BigInt(ino as string) + 1n}` }), false);
  assert.equal(isJournalStream({ JOURNAL_STREAM: `${BigInt(dev as string) + 1n}:${ino}` }), false);
  assert.equal(isJournalStream({ JOURNAL_STREAM: 'garbage' }), false);
  assert.equal(isJournalStream({}), false);
  assert.equal(isJournalStream(env, 987654), false, 'a closed descriptor is not the journal');
});

test('journal lines: priority prefix, peer first, fields after, one line', () => {
  const { dest, text } = capture();
  const log = createLogger('debug', { env: journalEnvForStdout(), destination: dest });
  log.warn({ peer: 'msul1' }, 'down after 5 failed attempts: connect ECONNREFUSED 10.1.1.1:5663');
  log.info('gatewayc 0.1.0 ready: 3 peers');
  log.info({ peer: 'msul2', file: '1700000000.x.msul2', msgid: 'gatewayc-delayed-delivered' }, 'delayed message delivered');
  log.error({ peer: 'msul3', n: 3, ok: false, why: 'two words', nested: { a: [1, 'x'] } }, 'line one\nline two');
  log.fatal('configuration error: /etc/gatewayc/gatewayc.conf:3: bad value');
  log.debug({ peer: 'msul1' }, 'debug detail');
  log.trace('below the level: not written');
  assert.equal(
    text(),
    [
      '<4>peer msul1: down after 5 failed attempts: connect ECONNREFUSED 10.1.1.1:5663',
      '<6>gatewayc 0.1.0 ready: 3 peers',
      '<6>peer msul2: delayed message delivered file=1700000000.x.msul2 msgid=gatewayc-delayed-delivered',
      '<3>peer msul3: line one\\nline two n=3 ok=false why="two words" nested={"a":[1,"x"]}',
      '<2>configuration error: /etc/gatewayc/gatewayc.conf:3: bad value',
      '<7>peer msul1: debug detail',
      '',
    ].join('\n'),
  );
});

test('journal lines: errors give their message, child bindings are fields, interpolation works', () => {
  const { dest, text } = capture();
  const log = createLogger('info', { env: journalEnvForStdout(), destination: dest });
  log.error(new Error('connect ETIMEDOUT\n    at stack frame'));
  log.warn({ peer: 'msul1', err: new Error('socket hang up') }, 'session lost');
  log.child({ peer: 'msul4' }).info('up (handshake %d ms)', 12);
  log.info({ value: 'quote " and \\ and tab\t' }, '');
  const lines = text().split('\n');
  assert.equal(lines[0], '<3>connect ETIMEDOUT\\n    at stack frame');
  assert.equal(lines[1], '<4>peer msul1: session lost: socket hang up');
  assert.equal(lines[2], '<6>peer msul4: up (handshake 12 ms)');
  assert.equal(lines[3], '<6>value="quote \\" and \\\\ and tab\\t"');
  assert.equal(lines.length, 5);
});

test('journal lines: the structured fields a sentence already says are left out', () => {
  const line = journalLine(`${JSON.stringify({ level: 40, peer: 'p', event: 'peer.down', failures: 3, reason: 'refused', msg: 'down after 3 failed attempts: refused', file: 'x.p' })}\n`);
  assert.equal(line, '<4>peer p: down after 3 failed attempts: refused file=x.p\n');
});

test('journalLine never passes a raw control character or newline', () => {
  const line = journalLine(`${JSON.stringify({ level: 40, msg: 'a\rb\u0007c\u001bd', peer: 'p\nq', k: 'v\u0000' })}\n`);
  assert.equal(line, '<4>peer p\\nq: a\\rb\\x07c\\x1bd k="v\\u0000"\n');
  assert.equal(journalLine('not json\n'), '<6>not json\n');
});

test('outside the journal the lines stay pino JSON with a timestamp', () => {
  const { dest, text } = capture();
  const log = createLogger('info', { env: { JOURNAL_STREAM: '1:2' }, destination: dest });
  log.warn({ peer: 'msul1' }, 'down');
  const rec = JSON.parse(text()) as Record<string, unknown>;
  assert.equal(rec.level, 40);
  assert.equal(rec.peer, 'msul1');
  assert.equal(rec.msg, 'down');
  assert.match(String(rec.time), /^\d{4}-\d\d-\d\dT/);
});

// End to end: stdout of a child is a file whose dev:ino is in JOURNAL_STREAM, as systemd
// does with the journal's stream socket; the default destination (fd 1) is used.
test('a child whose stdout matches JOURNAL_STREAM writes journal lines to fd 1; otherwise JSON', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-log-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const LOG_JS = path.resolve(__dirname, '../../src/log.js');
  const script = `const log = require(${JSON.stringify(LOG_JS)}).createLogger('info');
    log.warn({ peer: 'msul1' }, 'down after 5 failed attempts: connect ECONNREFUSED 10.1.1.1:5663');
    log.info('ready');
    log.debug('hidden');`;
  const run = (file: string, journal: 'match' | 'other'): string => {
    const fd = fs.openSync(file, 'w');
    const st = fs.fstatSync(fd, { bigint: true });
    const stream = journal === 'match' ? `${st.dev}:${st.ino}` : `${st.dev}:${st.ino + 1n}`;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: path.resolve(__dirname, '../../..'),
      env: { PATH: process.env.PATH, JOURNAL_STREAM: stream },
      stdio: ['ignore', fd, 'pipe'],
    });
    fs.closeSync(fd);
    assert.equal(r.status, 0, String(r.stderr));
    return fs.readFileSync(file, 'utf8');
  };
  assert.equal(
    run(path.join(dir, 'journal'), 'match'),
    '<4>peer msul1: down after 5 failed attempts: connect ECONNREFUSED 10.1.1.1:5663\n<6>ready\n',
  );
  const json = run(path.join(dir, 'plain'), 'other').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(json.map((r) => [r.level, r.msg]), [[40, 'down after 5 failed attempts: connect ECONNREFUSED 10.1.1.1:5663'], [30, 'ready']]);
});

test('journalLine escapes C1 controls and bidi overrides too', () => {
  const line = journalLine(`${JSON.stringify({ level: 40, msg: 'peer said \u009b2J\u0085x\u202ey', peer: 'p\u009d', k: 'v\u009c' })}\n`);
  assert.equal(line, '<4>peer p\\x9d: peer said \\x9b2J\\x85x\\u202ey k=v\\x9c\n');
});
