// debian/check-node, which the package's postinst runs: is /usr/bin/node a Node this build
// can run on? Run here with this machine's node in the place of /usr/bin/node
// (GATEWAYC_NODE) and a stand-in of /usr/lib/gatewayc (GATEWAYC_LIBDIR): its own
// built-for-node record and a stand-in sd-notify module, so every case is reachable.
// The real case (Debian's package, a third-party node at /usr/bin/node) is proven in a
// booted container by test/system/foreign-node.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

const CHECK_NODE = path.resolve(__dirname, '..', '..', '..', 'debian', 'check-node');
const here = `${process.versions.node} ${process.versions.modules}`;

interface Result { code: number | null; stdout: string; stderr: string }

function checkNode(builtFor: string, addonJs: string, node: string = process.execPath): Result {
  const lib = fs.mkdtempSync(path.join(os.tmpdir(), 'gwc-check-node-'));
  try {
    fs.writeFileSync(path.join(lib, 'built-for-node'), `${builtFor}\n`);
    fs.mkdirSync(path.join(lib, 'node_modules', 'sd-notify'), { recursive: true });
    fs.writeFileSync(path.join(lib, 'node_modules', 'sd-notify', 'index.js'), addonJs);
    const r = spawnSync(CHECK_NODE, [], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, GATEWAYC_NODE: node, GATEWAYC_LIBDIR: lib } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    fs.rmSync(lib, { recursive: true, force: true });
  }
}

const LOADS = 'module.exports = { ready() {} };\n';
const FOUND = `Node.js ${process.versions.node} (module ABI ${process.versions.modules}, no libnode)`;

/** The one sentence: the Node built for, the one found, what happens, what to do. */
function assertSentence(r: Result, builtFor: RegExp, found: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  const line = lines[0] as string;
  assert.match(line, /^gatewayc: built for the release's nodejs, /);
  assert.match(line, builtFor);
  assert.match(line, found);
  assert.match(line, /gatewayc is left unconfigured and not started until the release's nodejs is back at \/usr\/bin\/node \(apt-get install --reinstall nodejs, then dpkg --configure -a\)\.$/);
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('identify: version, module ABI and the libnode this node links (none for a self-contained build)', () => {
  const r = spawnSync(CHECK_NODE, ['identify'], { encoding: 'utf8', env: { PATH: process.env.PATH, GATEWAYC_NODE: process.execPath } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\d+\.\d+\.\d+ \d+ (-|libnode\.so\.\d+)\n$/);
  assert.ok(r.stdout.startsWith(`${here} `), r.stdout);
});

test('the Node it was built for, and an addon that loads: silent, exit 0', () => {
  assert.deepEqual(checkNode(`${here} -`, LOADS), { code: 0, stdout: '', stderr: '' });
});

test('another module ABI (Node 20 where Debian 12 has 18): the sentence names both', () => {
  const r = checkNode('18.20.4 108 libnode.so.108', LOADS);
  assertSentence(r, /built for the release's nodejs, Node\.js 18\.20\.4 \(module ABI 108, libnode\.so\.108\), but/, new RegExp(`but /usr/bin/node is ${esc(FOUND)}, which cannot load gatewayc's sd-notify addon;`));
});

test('the same ABI without the release\'s libnode (a third-party build of the same major): refused too', () => {
  const r = checkNode(`${process.versions.node.replace(/\d+$/, '0')} ${process.versions.modules} libnode.so.${process.versions.modules}`, LOADS);
  assertSentence(r, new RegExp(`\\(module ABI ${process.versions.modules}, libnode\\.so\\.${process.versions.modules}\\), but`), new RegExp(`/usr/bin/node is ${esc(FOUND)}, which cannot load`));
});

test('an addon that fails to load, or a node that dies after loading it: refused with the reason', () => {
  const boom = checkNode(`${here} -`, "throw new Error('libsystemd.so.0: cannot open shared object file\\nmore');\n");
  assertSentence(boom, /Node\.js/, /on which gatewayc's sd-notify addon fails to load \(libsystemd\.so\.0: cannot open shared object file\);/);
  // What a second libnode in one process does at exit (seen with a Node 20 from elsewhere on Debian 13).
  const abort = checkNode(`${here} -`, "process.on('exit', () => process.abort());\nmodule.exports = {};\n");
  assertSentence(abort, /Node\.js/, /fails to load \(exit status 134\);/);
});

test('no /usr/bin/node at all', () => {
  const r = checkNode('20.19.2 115 libnode.so.115', LOADS, '/nonexistent/node');
  assertSentence(r, /Node\.js 20\.19\.2 \(module ABI 115, libnode\.so\.115\)/, /but \/usr\/bin\/node is missing or does not run;/);
});
