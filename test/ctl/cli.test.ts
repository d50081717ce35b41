import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { controlConnectError, controlRequest, CtlError, peerConnectError } from '../../src/ctl/client';
import { Io, runCli } from '../../src/ctl/main';
import { requestLines } from '../../src/ctl/send';
import { VERSION } from '../../src/version';
import { NOW, sampleStatus } from './sample';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayctl-cli-'));
const servers: net.Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(argv: string[], opts: { stdin?: string[]; tty?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const out: Buffer[] = [];
  const err: string[] = [];
  const io: Io = {
    stdout: { write: (d: string | Uint8Array) => out.push(Buffer.from(d)), isTTY: opts.tty ?? false },
    stderr: { write: (d: string) => err.push(d) },
    stdin: () =>
      (async function* () {
        for (const chunk of opts.stdin ?? []) yield Buffer.from(chunk);
      })(),
    env: opts.env ?? {},
    now: () => NOW,
    hostname: () => 'testhost',
  };
  const code = await runCli(argv, io);
  return { code, out: Buffer.concat(out).toString('utf8'), err: err.join('') };
}

/** A one-sentence error: one line on stderr, no stack trace. */
function oneSentence(r: Run): void {
  assert.equal(r.err.split('\n').length, 2, `one line on stderr: ${r.err}`);
  assert.ok(r.err.startsWith('gatewayctl: '), r.err);
  assert.ok(!/\n\s+at /.test(r.err), 'no stack trace');
}

let serial = 0;
/** A UNIX socket server in the temp dir; `onLine` answers each line (undefined: no answer). */
async function server(onLine: (line: string, sock: net.Socket) => string | undefined): Promise<string> {
  const p = path.join(dir, `s${serial++}`);
  const srv = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const answer = onLine(line, sock);
        if (answer !== undefined) sock.write(answer);
      }
    });
    sock.on('error', () => undefined);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(p, r));
  return p;
}

describe('usage', () => {
  test('--version and --help', async () => {
    assert.deepEqual(await run(['--version']), { code: 0, out: `gatewayctl ${VERSION}\n`, err: '' });
    const h = await run(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.out, /^Usage: gatewayctl COMMAND/);
    assert.deepEqual(await run(['help']), h);
  });

  test('help COMMAND and COMMAND --help are the same text', async () => {
    const a = await run(['help', 'send']);
    const b = await run(['send', '--help']);
    assert.equal(a.code, 0);
    assert.match(a.out, /^Usage: gatewayctl send PEER REQUEST \| PEER -\n/);
    assert.deepEqual(a, b);
  });

  const usage: [string[], RegExp][] = [
    [[], /^gatewayctl: no command given; the commands are status, send, retry, reload, check, delayed, help \(see gatewayctl --help\)\n$/],
    [['stauts'], /unknown command "stauts"/],
    [['status', '--frobnicate'], /unknown option --frobnicate/],
    [['reload', '--json'], /option --json does not apply to reload/],
    [['status', '--socket'], /option --socket needs a value/],
    [['status', '--socket', '/x', '--config', '/y'], /either --socket or --config/],
    [['send', 'alpha'], /send needs PEER and REQUEST/],
    [['send', 'alpha', 'ping', 'pong'], /send takes at most/],
    [['send', '../control', 'ping'], /peer id "\.\.\/control" must not contain "\/"/],
    [['send', 'alpha', ''], /REQUEST is empty/],
    [['reload', 'now'], /reload takes no arguments/],
    [['help', 'frob'], /no help for "frob"/],
    [['delayed', 'a', 'b'], /delayed takes at most one PEER/],
  ];
  for (const [argv, re] of usage) {
    test(`usage error: gatewayctl ${argv.join(' ')}`, async () => {
      const r = await run(argv);
      assert.equal(r.code, 64);
      assert.equal(r.out, '');
      oneSentence(r);
      assert.match(r.err, re);
    });
  }
});

describe('reaching the daemon', () => {
  test('no socket: not running, exit 3, the sentence the issue asks for', async () => {
    const p = path.join(dir, 'nothing-here');
    const r = await run(['status', '--socket', p]);
    assert.deepEqual(r, { code: 3, out: '', err: `gatewayctl: cannot reach the gatewayc daemon at ${p}: is it running? (systemctl status gatewayc)\n` });
  });

  test('a stale file where the socket was (ECONNREFUSED) is the same', async () => {
    const p = path.join(dir, 'stale');
    fs.writeFileSync(p, '');
    const r = await run(['retry', '--socket', p]);
    assert.equal(r.code, 3);
    assert.match(r.err, /cannot reach the gatewayc daemon at .*stale: is it running\?/);
  });

  test('the control socket comes from --config (gatewaycControlSocket, relative to the file)', async () => {
    const conf = path.join(dir, 'ctl.conf');
    fs.writeFileSync(conf, 'PerlSetVar gatewaycControlSocket ctl-from-config\n# a bad value elsewhere must not stop reload from asking\nPerlSetVar gatewaycMaxSessions zero\n');
    const r = await run(['reload', '--config', conf]);
    assert.equal(r.code, 3);
    assert.ok(r.err.includes(`at ${path.join(dir, 'ctl-from-config')}:`), r.err);
  });

  test('an unreadable config: exit 78 and a hint', async () => {
    const r = await run(['status', '--config', path.join(dir, 'missing.conf')]);
    assert.equal(r.code, 78);
    oneSentence(r);
    assert.match(r.err, /cannot read .*missing\.conf: no such file or directory \(or name the control socket with --socket PATH\)/);
  });

  test('permission denied: names root and the service group, exit 4', () => {
    const e = controlConnectError(Object.assign(new Error('x'), { code: 'EACCES' }), '/run/gatewayc/control');
    assert.equal(e.exitCode, 4);
    assert.equal(e.message, 'permission denied on the control socket /run/gatewayc/control: it is for root and the members of the group gatewayc (run as root, or add yourself to gatewayc)');
    const p = peerConnectError(Object.assign(new Error('x'), { code: 'EACCES' }), 'msul2', '/nonexistent/msul2');
    assert.equal(p.exitCode, 4);
    assert.match(p.message, /^permission denied on \/nonexistent\/msul2: the peer sockets are for root and the group that owns it/);
  });

  test('a daemon that closes without answering, or answers garbage', async () => {
    const closes = await server((_l, sock) => {
      sock.destroy();
      return undefined;
    });
    const r1 = await run(['status', '--socket', closes]);
    assert.equal(r1.code, 3);
    assert.match(r1.err, /closed the connection without answering/);
    const garbage = await server(() => 'hello\n');
    const r2 = await run(['status', '--socket', garbage]);
    assert.equal(r2.code, 1);
    oneSentence(r2);
    assert.match(r2.err, /does not answer like gatewayc/);
  });

  test('a daemon that does not answer in time', async () => {
    const silent = await server(() => undefined);
    await assert.rejects(controlRequest(silent, { op: 'status' }, 100), (e: CtlError) => e.exitCode === 3 && /did not answer within 0.1 s/.test(e.message));
  });
});

describe('commands against a stand-in daemon', () => {
  const seen: Record<string, unknown>[] = [];
  let control = '';
  const reply = (req: Record<string, unknown>): Record<string, unknown> => {
    switch (req.op) {
      case 'status':
        return { ok: true, ...sampleStatus() };
      case 'retry':
        return (req.peers as string[]).includes('nope') ? { ok: false, error: 'unknown peer: nope' } : { ok: true, peers: (req.peers as string[]).length ? req.peers : ['msul2', 'ucsd1', 'fsu3'] };
      case 'reload':
        return seen.filter((r) => r.op === 'reload').length > 1
          ? { ok: false, error: '/etc/gatewayc/gatewayc.conf:3: gatewaycMaxSessions must be a positive integer, got "zero"', added: [], removed: [], reconnected: [], warnings: [] }
          : { ok: true, added: ['new1'], removed: ['old1'], reconnected: [], warnings: [] };
      case 'delayed':
        return { ok: true, dir: '/spool', files: [{ name: '17.fsu3', peer: 'fsu3', size: 10, mtime: NOW - 5000, rejected: null }] };
      default:
        return { ok: false, error: 'unknown op' };
    }
  };

  before(async () => {
    control = await server((line) => {
      const req = JSON.parse(line) as Record<string, unknown>;
      seen.push(req);
      return `${JSON.stringify(reply(req))}\n`;
    });
  });

  test('status: a table; named peers only; an unknown peer is an error', async () => {
    const r = await run(['status', '--socket', control]);
    assert.equal(r.code, 0);
    assert.equal(r.err, '');
    assert.match(r.out, /^gatewayc 0\.1\.0 \(pid 4242\), up 2 d 5 h, host id msu1\n/);
    assert.match(r.out, /\nfsu3 +down +insecure +0\/4 +0 +5\/5 +in 12 s /);
    assert.ok(!r.out.includes('\x1b'), 'no colour into a pipe');
    const one = await run(['status', 'fsu3', '--socket', control]);
    assert.equal(one.out.trimEnd().split('\n').length, 6);
    const bad = await run(['status', 'nope', '--socket', control]);
    assert.equal(bad.code, 1);
    assert.equal(bad.err, 'gatewayctl: unknown peer nope (configured: msul2, ucsd1, fsu3)\n');
  });

  test('status on a terminal: colour, unless NO_COLOR', async () => {
    assert.ok((await run(['status', '--socket', control], { tty: true })).out.includes('\x1b[31mdown'));
    assert.ok(!(await run(['status', '--socket', control], { tty: true, env: { NO_COLOR: '1' } })).out.includes('\x1b'));
  });

  test('status --json: the daemon\'s object without the transport flag; filtered by PEER', async () => {
    const r = await run(['status', '--json', '--socket', control]);
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out), JSON.parse(JSON.stringify(sampleStatus())));
    const f = JSON.parse((await run(['status', 'ucsd1', '--json', '--socket', control])).out) as { peers: { id: string }[] };
    assert.deepEqual(f.peers.map((p) => p.id), ['ucsd1']);
  });

  test('retry: all, some, unknown', async () => {
    const all = await run(['retry', '--socket', control]);
    assert.equal(all.code, 0);
    assert.match(all.out, /msul2, ucsd1, fsu3\n$/);
    assert.deepEqual(seen.at(-1), { op: 'retry', peers: [] });
    await run(['retry', 'fsu3', '--socket', control]);
    assert.deepEqual(seen.at(-1), { op: 'retry', peers: ['fsu3'] });
    const bad = await run(['retry', 'nope', '--socket', control]);
    assert.deepEqual(bad, { code: 1, out: '', err: 'gatewayctl: unknown peer: nope\n' });
  });

  test('reload: one line on success; the reason and exit 1 on refusal', async () => {
    assert.deepEqual(await run(['reload', '--socket', control]), { code: 0, out: 'reloaded: added new1; removed old1\n', err: '' });
    const refused = await run(['reload', '--socket', control]);
    assert.equal(refused.code, 1);
    assert.equal(refused.out, '');
    assert.equal(refused.err, 'gatewayctl: reload refused, the running configuration stays: /etc/gatewayc/gatewayc.conf:3: gatewaycMaxSessions must be a positive integer, got "zero"\n');
  });

  test('delayed: table and --json', async () => {
    const r = await run(['delayed', 'fsu3', '--socket', control]);
    assert.equal(r.code, 0);
    assert.deepEqual(seen.at(-1), { op: 'delayed', peer: 'fsu3' });
    assert.match(r.out, /^NAME +PEER +AGE +SIZE\n17\.fsu3 +fsu3 +5 s +10 B\n/);
    const j = JSON.parse((await run(['delayed', '--json', '--socket', control])).out) as unknown;
    // This stand-in is a daemon from before the listing had a limit: nothing counted beyond it.
    assert.deepEqual(j, { dir: '/spool', files: [{ name: '17.fsu3', peer: 'fsu3', size: 10, mtime: NOW - 5000, rejected: null }], notListed: { waiting: 0, setAside: 0 } });
  });
});

describe('send against a stand-in peer socket', () => {
  test('one request, pipelined requests from stdin, con_lost', async () => {
    const sockDir = path.join(dir, 'peers');
    fs.mkdirSync(sockDir);
    const got: string[] = [];
    const peerSock = await server((line) => {
      got.push(line);
      if (line === 'down') return 'con_lost\n';
      return `${line.replace(/^echo:/, '')}\n`;
    });
    fs.renameSync(peerSock, path.join(sockDir, 'msul2'));

    assert.deepEqual(await run(['send', 'msul2', 'echo:hello', '--sock-dir', sockDir]), { code: 0, out: 'hello\n', err: '' });
    const piped = await run(['send', 'msul2', '-', '--sock-dir', sockDir], { stdin: ['echo:a\necho:', 'b\n\n', 'echo:c'] });
    assert.deepEqual(piped, { code: 0, out: 'a\nb\nc\n', err: '' });
    assert.deepEqual(got.slice(-3), ['echo:a', 'echo:b', 'echo:c'], 'split on newlines across chunks; an empty line is skipped; a last line without newline is sent');

    const lost = await run(['send', 'msul2', '-', '--sock-dir', sockDir], { stdin: ['echo:1\ndown\necho:3\n'] });
    assert.equal(lost.code, 2);
    assert.equal(lost.out, '1\ncon_lost\n3\n');
    assert.equal(lost.err, 'gatewayctl: 1 of 3 answers were con_lost: msul2 is not reachable now (gatewayctl status msul2)\n');
  });

  test('a peer socket that closes before answering: exit 2, the request is not repeated in the message', async () => {
    const sockDir = path.join(dir, 'peers2');
    fs.mkdirSync(sockDir);
    const p = await server((_l, sock) => {
      sock.destroy();
      return undefined;
    });
    fs.renameSync(p, path.join(sockDir, 'fsu3'));
    const r = await run(['send', 'fsu3', 'encrypt:passwd:secretword', '--sock-dir', sockDir]);
    assert.equal(r.code, 2);
    oneSentence(r);
    assert.match(r.err, /closed the connection .* before answering 1 request/);
    assert.ok(!r.err.includes('secretword'));
  });

  test('no socket for the peer: exit 3', async () => {
    const r = await run(['send', 'ghost', 'ping', '--sock-dir', dir]);
    assert.equal(r.code, 3);
    oneSentence(r);
    assert.match(r.err, /there is no socket for ghost at .*ghost: is ghost in hosts\.tab, and is gatewayc running\?/);
  });

  test('requestLines keeps bytes as they are', async () => {
    const lines: Buffer[] = [];
    for await (const l of requestLines([Buffer.from([0x61, 0xff, 0x0d, 0x0a, 0x00, 0x0a])])) lines.push(l);
    assert.deepEqual(lines, [Buffer.from([0x61, 0xff, 0x0d]), Buffer.from([0x00])]);
  });
});

describe('check', () => {
  test('a good config: warnings as file:line, a summary, exit 0; --quiet prints nothing', async () => {
    const d = fs.mkdtempSync(path.join(dir, 'check-'));
    fs.writeFileSync(path.join(d, 'gatewayc.conf'), `PerlSetVar lonTabDir ${d}\nPerlSetVar gatewaycMaxSesions 3\n`);
    fs.writeFileSync(path.join(d, 'hosts.tab'), 'testhost:dom:library:me.example:10.0.0.1\nmsul2:dom:library:l2.example:10.0.0.2\nbroken\n');
    const conf = path.join(d, 'gatewayc.conf');
    const r = await run(['check', '--config', conf]);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      [
        `${conf}:2: warning: unknown key gatewaycMaxSesions (did you mean gatewaycMaxSessions?)`,
        `${path.join(d, 'hosts.tab')}:3: warning: malformed line skipped: expected id:domain:role:name:address (or id:domain:role:hostname:protocol:...), got 1 field`,
        `configuration OK: 1 peer in ${path.join(d, 'hosts.tab')}, host id testhost, 2 warnings`,
        '',
      ].join('\n'),
      'lonHostID unset: the host name, as the unit passes it, so our own line is no peer',
    );
    assert.deepEqual(await run(['check', '--config', conf, '--quiet']), { code: 0, out: '', err: '' });
    const other = await run(['check', '--config', conf, '--default-host-id', 'msul2']);
    assert.match(other.out, /configuration OK: 1 peer .* host id msul2/);
  });

  test('a broken config: the error as file:line, exit 1, also with --quiet', async () => {
    const d = fs.mkdtempSync(path.join(dir, 'check-'));
    const conf = path.join(d, 'gatewayc.conf');
    fs.writeFileSync(conf, `PerlSetVar lonTabDir ${d}\n\nPerlSetVar londPort 99999\n`);
    fs.writeFileSync(path.join(d, 'hosts.tab'), '');
    const r = await run(['check', '--config', conf]);
    assert.equal(r.code, 1);
    assert.equal(r.out, `${conf}:3: error: londPort must be a port number from 1 to 65535, got "99999"\nconfiguration refused: gatewayc would not start or reload with it\n`);
    assert.deepEqual(await run(['check', '--config', conf, '--quiet']), { code: 1, out: `${conf}:3: error: londPort must be a port number from 1 to 65535, got "99999"\n`, err: '' });
  });

  test('no hosts.tab: an error naming it', async () => {
    const d = fs.mkdtempSync(path.join(dir, 'check-'));
    const conf = path.join(d, 'gatewayc.conf');
    fs.writeFileSync(conf, `PerlSetVar lonTabDir ${d}/tabs\n`);
    const r = await run(['check', '--config', conf]);
    assert.equal(r.code, 1);
    assert.match(r.out, new RegExp(`^${d}/tabs/hosts\\.tab: error: cannot read ${d}/tabs/hosts\\.tab: no such file or directory \\(lonTabDir is set at ${conf}:1\\)\n`));
  });
});

describe('text from the daemon, a peer or a config file never acts on the terminal', () => {
  // eslint-disable-next-line no-control-regex
  const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u;
  const safe = (s: string): boolean => !UNSAFE.test(s);
  const NAMES = ['1.\x1b]0;owned\x07.fsu3', '2\x1b[2J\x1b[H.fsu3', '3\r\nmsul2  0 s  1 B.fsu3', '4\u009b31m\u202e.fsu3'];
  let control = '';

  test('set up a stand-in daemon that passes hostile text along', async () => {
    control = await server((line) => {
      const req = JSON.parse(line) as Record<string, unknown>;
      switch (req.op) {
        case 'delayed':
          return `${JSON.stringify({ ok: true, dir: '/spool\x1b[8m', files: NAMES.map((name, i) => ({ name, peer: 'fsu3', size: i, mtime: NOW })) })}\n`;
        case 'status': {
          const st = sampleStatus();
          (st.peers[2] as (typeof st.peers)[0]).lastError = 'peer said \u009b2J\u009d0;owned\u009c\u0085';
          return `${JSON.stringify({ ok: true, ...st })}\n`;
        }
        case 'reload':
          return `${JSON.stringify({ ok: false, error: '/etc/gatewayc/\x1b]0;x\x07.conf:1: bad\nreloaded: fine', added: [], removed: [], reconnected: [], warnings: [] })}\n`;
        default:
          return `${JSON.stringify({ ok: false, error: `unknown peer: \x1b[2J\u009b` })}\n`;
      }
    });
  });

  test('delayed: hostile spool file names, one row each, escaped; --json keeps the names', async () => {
    for (const tty of [false, true]) {
      const r = await run(['delayed', '--socket', control], { tty });
      assert.equal(r.code, 0, r.err);
      assert.ok(safe(r.out), JSON.stringify(r.out));
      assert.equal(r.out.split('\n').length, 1 + NAMES.length + 3);
      assert.match(r.out, /\n1\.\\x1b\]0;owned\\x07\.fsu3 /);
      assert.match(r.out, /\n3\\r\\nmsul2 {2}0 s {2}1 B\.fsu3 /);
      assert.match(r.out, /\n4\\x9b31m\\u202e\.fsu3 /);
    }
    const j = await run(['delayed', '--json', '--socket', control], { tty: true });
    assert.ok(safe(j.out), JSON.stringify(j.out));
    const parsed = JSON.parse(j.out) as { files: { name: string }[] };
    assert.deepEqual(parsed.files.map((f) => f.name), NAMES, 'JSON escapes, which a parser undoes');
  });

  test('status: C1 controls in a last error are escaped, in the table and in --json', async () => {
    const r = await run(['status', '--socket', control], { tty: true });
    assert.equal(r.code, 0, r.err);
    const ESC = '\x1b';
    assert.ok(safe(r.out.replace(new RegExp(`${ESC}\\[[0-9;]*m`, 'g'), '')), JSON.stringify(r.out));
    assert.match(r.out, /peer said \\x9b2J\\x9d0;owned\\x9c\\x85/);
    const j = await run(['status', '--json', '--socket', control]);
    assert.ok(safe(j.out));
    assert.equal((JSON.parse(j.out) as { peers: { lastError: string }[] }).peers[2]?.lastError, 'peer said \u009b2J\u009d0;owned\u009c\u0085');
  });

  test('errors the daemon sends are one escaped line on stderr', async () => {
    const r = await run(['reload', '--socket', control]);
    assert.equal(r.code, 1);
    assert.ok(safe(r.err), JSON.stringify(r.err));
    assert.equal(r.err.split('\n').length, 2);
    assert.match(r.err, /\\x1b\]0;x\\x07\.conf:1: bad\\nreloaded: fine\n$/);
    const e = await run(['retry', '--socket', control]);
    assert.ok(safe(e.err), JSON.stringify(e.err));
  });

  test('check: hostile hosts.tab and config text in warnings are escaped', async () => {
    const d = fs.mkdtempSync(path.join(dir, 'check-'));
    const conf = path.join(d, 'gatewayc.conf');
    fs.writeFileSync(conf, `PerlSetVar lonTabDir ${d}\nPerlSetVar gatewayc\u009b2J\u202e 1\n`);
    fs.writeFileSync(path.join(d, 'hosts.tab'), 'testhost:dom:library:me.example:10.0.0.1\nbad\u009b2J\u202e:dom:library:x:10.0.0.2\nmsul2:dom:library:l2.example:10.0.0.3\x1b[2J\n');
    const r = await run(['check', '--config', conf]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.ok(safe(r.out), JSON.stringify(r.out));
    assert.match(r.out, /unknown key gatewayc\\x9b2J\\u202e/);
    assert.equal(r.out.split('\n').length, 5, 'three warnings, the summary, the final newline');
  });

  test('send: the answer as it is into a pipe, escaped on a terminal', async () => {
    const sockDir = path.join(dir, 'peers-hostile');
    fs.mkdirSync(sockDir);
    const answer = Buffer.from('ok \x1b]0;owned\x07 \u009b2J \u202e end', 'utf8');
    const p = await server(() => `${answer.toString('utf8')}\n`);
    fs.renameSync(p, path.join(sockDir, 'msul2'));
    const piped = await run(['send', 'msul2', 'ping', '--sock-dir', sockDir]);
    assert.equal(piped.code, 0);
    assert.equal(piped.out, `${answer.toString('utf8')}\n`, 'scripts get the bytes');
    const tty = await run(['send', 'msul2', 'ping', '--sock-dir', sockDir], { tty: true });
    assert.equal(tty.code, 0);
    assert.equal(tty.out, 'ok \\x1b]0;owned\\x07 \\x9b2J \\u202e end\n');
  });
});
