import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { parseListenEnv, takeInheritedSockets } from '../../src/systemd/activation';

const PID = 4242;

const entries = (m: Map<string, number[]>): [string, number[]][] => [...m.entries()];

test('not socket-activated: no variables, no sockets, no problem', () => {
  assert.deepEqual(parseListenEnv({}, PID), { fds: new Map() });
  assert.deepEqual(parseListenEnv({ LISTEN_PID: String(PID) }, PID), { fds: new Map() });
  assert.deepEqual(parseListenEnv({ LISTEN_FDS: '2' }, PID), { fds: new Map() });
});

test('names map to descriptors from 3 on, in order', () => {
  const r = parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'msul1:control:msul2' }, PID);
  assert.equal(r.problem, undefined);
  assert.deepEqual(entries(r.fds), [['msul1', [3]], ['control', [4]], ['msul2', [5]]]);
});

test('a repeated name collects all its descriptors', () => {
  const r = parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'a:b:a' }, PID);
  assert.deepEqual(entries(r.fds), [['a', [3, 5]], ['b', [4]]]);
});

test('without LISTEN_FDNAMES every descriptor is "unknown", as sd_listen_fds_with_names does', () => {
  const r = parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: '2' }, PID);
  assert.deepEqual(entries(r.fds), [['unknown', [3, 4]]]);
});

test('an empty name between colons is kept as the empty name', () => {
  const r = parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'a::b' }, PID);
  assert.deepEqual(entries(r.fds), [['a', [3]], ['', [4]], ['b', [5]]]);
});

test('LISTEN_FDS=0 is no sockets and no problem', () => {
  assert.deepEqual(parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: '0', LISTEN_FDNAMES: '' }, PID), { fds: new Map() });
});

test('variables addressed to another process are ignored, with a reason', () => {
  const r = parseListenEnv({ LISTEN_PID: '99', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a' }, PID);
  assert.equal(r.fds.size, 0);
  assert.match(r.problem ?? '', /LISTEN_PID=99 names another process \(this is 4242\)/);
});

test('malformed values give no sockets and a one-line problem', () => {
  const cases: [NodeJS.ProcessEnv, RegExp][] = [
    [{ LISTEN_PID: 'abc', LISTEN_FDS: '1' }, /LISTEN_PID="abc" is not a process id/],
    [{ LISTEN_PID: '0', LISTEN_FDS: '1' }, /LISTEN_PID="0"/],
    [{ LISTEN_PID: '-4242', LISTEN_FDS: '1' }, /LISTEN_PID/],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: 'two' }, /LISTEN_FDS="two" is not a descriptor count/],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: '-1' }, /LISTEN_FDS="-1"/],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: '1.5' }, /LISTEN_FDS/],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: '999999999' }, /LISTEN_FDS/],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' }, /1 names for LISTEN_FDS=2/],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b' }, /2 names for LISTEN_FDS=1/],
    [{ LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: '' }, /0 names for LISTEN_FDS=1/],
  ];
  for (const [env, problem] of cases) {
    const r = parseListenEnv(env, PID);
    assert.equal(r.fds.size, 0, JSON.stringify(env));
    assert.match(r.problem ?? '', problem, JSON.stringify(env));
    assert.doesNotMatch(r.problem ?? '', /\n/);
  }
});

test('takeInheritedSockets removes the variables when they are ours', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'msul1', OTHER: 'kept' };
  const fds = takeInheritedSockets(env, PID);
  assert.deepEqual(entries(fds), [['msul1', [3]]]);
  assert.deepEqual(env, { OTHER: 'kept' });
});

test('takeInheritedSockets removes unusable variables that are ours and reports why', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' };
  const problems: string[] = [];
  const fds = takeInheritedSockets(env, PID, (p) => problems.push(p));
  assert.equal(fds.size, 0);
  assert.deepEqual(env, {});
  assert.equal(problems.length, 1);
});

test("takeInheritedSockets leaves another process's variables alone", () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: '99', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a' };
  const problems: string[] = [];
  assert.equal(takeInheritedSockets(env, PID, (p) => problems.push(p)).size, 0);
  assert.deepEqual(env, { LISTEN_PID: '99', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a' });
  assert.equal(problems.length, 1);
});

test('takeInheritedSockets defaults to process.env and process.pid', () => {
  const saved = { ...process.env };
  try {
    process.env.LISTEN_PID = String(process.pid);
    process.env.LISTEN_FDS = '0';
    assert.equal(takeInheritedSockets().size, 0);
    assert.equal(process.env.LISTEN_PID, undefined);
    assert.equal(process.env.LISTEN_FDS, undefined);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

// A real handover: a listening socket becomes fd 3 of a child, as systemd passes it, with
// LISTEN_PID set to the child's pid by a shell that then execs node; the child serves it
// with net.Server.listen({ fd }) after takeInheritedSockets.
test('an inherited listening socket is served by the process that takes it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-act-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sock = path.join(dir, 'msul1');
  const server = net.createServer(() => assert.fail('the parent must not accept'));
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const activation = path.resolve(__dirname, '../../src/systemd/activation.js');
  const script = `
    const { takeInheritedSockets } = require(${JSON.stringify(activation)});
    const fds = takeInheritedSockets(process.env, process.pid, (p) => { console.error(p); process.exit(3); });
    const left = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'].filter((k) => k in process.env);
    const fd = fds.get('msul1')[0];
    require('node:net')
      .createServer((c) => c.end('served on fd ' + fd + ', variables left: ' + left.length + '\\n'))
      .listen({ fd }, () => process.stdout.write('listening\\n'));`;
  const child = spawn('/bin/sh', ['-c', 'export LISTEN_PID=$$; exec "$0" -e "$1"', process.execPath, script], {
    stdio: ['ignore', 'pipe', 'inherit', fd],
    env: { ...process.env, LISTEN_FDS: '1', LISTEN_FDNAMES: 'msul1' },
  });
  t.after(() => child.kill());
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
  // From here only the child holds the listening socket. libuv unlinks the path it bound
  // when the server closes, so the socket moves to another name first (a bound socket
  // follows its inode).
  const moved = path.join(dir, 'moved');
  fs.renameSync(sock, moved);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const answer = await new Promise<string>((resolve, reject) => {
    let got = '';
    net.connect(moved).on('data', (d) => (got += d)).on('end', () => resolve(got)).on('error', reject);
  });
  assert.equal(answer, 'served on fd 3, variables left: 0\n');
});
