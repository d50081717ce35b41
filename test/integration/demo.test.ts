// `npm run demo` as a new user runs it, on a node whose OpenSSL has no IDEA (no legacy
// provider here; Debian's nodejs has none at all): the example lond falls back to the
// test side's plain IDEA, the README's two requests answer, and Ctrl-C (SIGINT to the
// whole foreground process group) stops everything with exit status 0.
// The system test (test/system/demo.test.ts) does the same from a fresh clone on Debian's
// own nodejs; this one runs on every CI run, in seconds.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../support/daemon';

const DEMO = path.join(ROOT, 'build', 'scripts', 'demo.js');
const CTL = path.join(ROOT, 'bin', 'gatewayctl');
const CONF = path.join(ROOT, 'example', 'gatewayc.conf');
const PORT = 15663; // example/gatewayc.conf's londPort

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether something (another demo) already listens where the demo's example lond must. */
function portTaken(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(true));
    s.listen({ host, port: PORT }, () => s.close(() => resolve(false)));
  });
}

/** Processes of a process group, from /proc (field 5 of stat is the pgid). */
function groupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A NOTIFY_SOCKET that records what is sent to it (node has no AF_UNIX datagrams, python does). */
async function notifyListener(t: { after: (fn: () => void) => void }): Promise<{ path: string; got: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-demo-notify-'));
  const sock = path.join(dir, 'notify');
  const got: string[] = [];
  const py = spawn('python3', ['-c', 'import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound", flush=True)\nwhile True:\n    print(s.recv(65536).decode(errors="replace").replace("\\n", " "), flush=True)', sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    py.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    py.once('error', reject);
    py.once('exit', (code) => reject(new Error(`python3 exited ${code}`)));
    let buf = '';
    py.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'bound') resolve();
        else got.push(line);
      }
    });
  });
  return { path: sock, got };
}

/** What a user types in the other terminal (asynchronously: the demo's output must keep flowing). */
function send(peer: string, request: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CTL, '--config', CONF, 'send', peer, request], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out: out.trim() }));
  });
}

test('npm run demo without OpenSSL IDEA: the plain IDEA serves, demo2 ping and demo3 encrypt:echo:hello answer, Ctrl-C exits 0 leaving nothing running', async (t) => {
  if ((await portTaken('127.0.0.2')) || (await portTaken('127.0.0.3'))) {
    t.skip(`127.0.0.2 or 127.0.0.3 port ${PORT} is taken (another demo running?)`);
    return;
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS; // no legacy provider: OpenSSL's IDEA is missing, as on Debian
  delete env.FAKE_LOND_IDEA;
  // As inside a container or a unit, which systemd tells where to notify: not the demo
  // daemon's business (with it, the daemon would need the sd-notify addon, and tell
  // systemd it is ready). A listener there must hear nothing.
  const notify = await notifyListener(t);
  env.NOTIFY_SOCKET = notify.path;
  // detached: its own process group, as a terminal gives a foreground job
  const demo = spawn(process.execPath, [DEMO], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pgid = demo.pid as number;
  let output = '';
  demo.stdout.on('data', (d: Buffer) => (output += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
  try {
    let answer = await send('demo2', 'ping');
    const deadline = Date.now() + 20_000;
    while (answer.out !== 'demo2' && Date.now() < deadline) {
      await sleep(200);
      answer = await send('demo2', 'ping');
    }
    assert.deepEqual(answer, { code: 0, out: 'demo2' }, output);
    assert.deepEqual(await send('demo3', 'encrypt:echo:hello'), { code: 0, out: 'hello' }, output);
    await sleep(100); // the example lond's log line of that request
    assert.match(output, /idea=plain/, 'the example lond runs on the plain IDEA');
    assert.match(output, /demo3: session \d+ request #\d+ echo 10 bytes encrypted/, 'the request travelled encrypted');

    process.kill(-pgid, 'SIGINT'); // Ctrl-C
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('still running 15 s after Ctrl-C'), 15_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0, output);
    assert.match(output, /^gatewayc demo: stopped \(gatewayc exit status 0, example lond exit status 0\)$/m, 'the demo says both ended cleanly');
    // The daemon and the example lond are gone too (no orphan left in the group).
    const until = Date.now() + 5000;
    while (groupMembers(pgid).length > 0 && Date.now() < until) await sleep(50);
    assert.deepEqual(groupMembers(pgid), [], 'processes left after Ctrl-C');
    assert.notEqual((await send('demo2', 'ping')).code, 0, 'nobody answers any more');
    assert.deepEqual(notify.got, [], 'the demo daemon sent nothing to NOTIFY_SOCKET');
  } finally {
    if (groupMembers(pgid).length > 0) process.kill(-pgid, 'SIGKILL');
  }
});
