// hosts.tab on random input: parsing never throws, whatever comes out is safe to use as a
// file name, and well-formed tables in either format round-trip.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PEER_ID_BYTES, MAX_SOCKET_PATH_BYTES, parseHostsTab, peerSocketPath, validPeerId } from '../../src/config/hosts';
import { ASCII_PRINTABLE, CONTROLS, forAll, Gen, gen, UNICODE } from './gen';

const OWN = 'self1';
const SOCK_DIR = '/run/gatewayc/sockets';

/** Random lines made of hosts.tab-ish pieces: ids, colons, addresses, junk. */
const lineGen: Gen<string> = (r, size) =>
  gen.array<string>((rr, s) =>
    rr.weighted<string>([
      [6, ':'],
      [4, rr.pick(['msul1', 'msu-2', 'a_b.c', OWN, 'x'.repeat(70), 'é', '日本'])],
      [3, rr.pick(['..', '.', '/', '../evil', 'a/b', '\x00', '\x1b', '\x7f', '\u0085', '\t', ' ', '\u00a0', '\u2028', '\ufeff'])],
      [3, rr.pick(['127.0.0.1', '::1', 'host.example.org', 'https', 'http', 'HTTP', 'nosuch.invalid', ''])],
      [2, rr.pick(['#', 'library', 'access', 'msu'])],
      [3, gen.string([...ASCII_PRINTABLE, ...CONTROLS.filter((c) => c !== '\n'), ...UNICODE], 8)(rr, s)],
    ]), 14)(r, size).join('');

const tableGen: Gen<string> = (r, size) => gen.array(lineGen, 25)(r, size).join(r.pick(['\n', '\r\n']));

test('parseHostsTab on random text: never throws; every peer it returns is safe to use as a file name', () => {
  forAll('hosts-random', tableGen, (text) => {
    const lines = text.split(/\r?\n/).length;
    const { peers, diags } = parseHostsTab(text, '/etc/gatewayc/hosts.tab', { ownId: OWN, sockDir: SOCK_DIR });
    const ids = new Set<string>();
    for (const p of peers) {
      assert.equal(validPeerId(p.id), undefined, `accepted id ${JSON.stringify(p.id)}`);
      assert.ok(!p.id.includes('/') && p.id !== '.' && p.id !== '..');
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\x00-\x1f\x7f-\x9f\s]/u.test(p.id), `id with a control or space ${JSON.stringify(p.id)}`);
      assert.ok(Buffer.byteLength(p.id) <= MAX_PEER_ID_BYTES);
      assert.ok(Buffer.byteLength(peerSocketPath(SOCK_DIR, p.id)) <= MAX_SOCKET_PATH_BYTES);
      assert.notEqual(p.id, OWN, 'own id gets no socket');
      assert.ok(!ids.has(p.id), `id ${p.id} twice`);
      ids.add(p.id);
      assert.ok(p.address !== '' && !/\s/u.test(p.address), `address ${JSON.stringify(p.address)}`);
      assert.ok(p.line >= 1 && p.line <= lines);
    }
    for (const d of diags) {
      assert.equal(d.severity, 'warning');
      assert.ok(d.line !== undefined && d.line >= 1 && d.line <= lines, `diag line ${String(d.line)} of ${lines}`);
      assert.ok(!d.message.includes('\n'));
    }
  }, { runs: 1500, show: (t) => JSON.stringify(t) });
});

/** Ids lond and LON-CAPA use: letters, digits, '-', '_', '.', and some non-ASCII letters. */
const ID_CHARS = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.', 'é', 'ü', '日'];
const idGen: Gen<string> = (r, size) => {
  for (;;) {
    const id = gen.string(ID_CHARS, 16, 1)(r, size);
    if (id !== '.' && id !== '..' && id !== OWN) return id;
  }
};
const addrGen: Gen<string> = (r) =>
  r.pick([`127.0.${r.int(0, 255)}.${r.int(1, 254)}`, `10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`, `host${r.int(1, 999)}.example.org`]);

test('well-formed tables in either format round-trip (CRLF, blanks, comments, spaces around fields)', () => {
  interface Entry { id: string; domain: string; role: string; hostname: string; address: string; newFormat: boolean }
  const g: Gen<{ entries: Entry[]; text: string }> = (r, size) => {
    const seen = new Set<string>();
    const entries: Entry[] = [];
    for (const _ of Array.from({ length: r.int(0, Math.max(1, Math.round(20 * size))) })) {
      const id = idGen(r, size);
      if (seen.has(id)) continue;
      seen.add(id);
      const newFormat = r.bool(0.5);
      const hostname = `${id.replace(/[^A-Za-z0-9-]/g, 'x')}.example.org`;
      entries.push({ id, domain: r.pick(['msu', 'dom1']), role: r.pick(['library', 'access']), hostname, address: newFormat ? hostname : addrGen(r, size), newFormat });
    }
    const sp = (): string => r.pick(['', '', ' ', '\t']);
    const out: string[] = [];
    for (const e of entries) {
      if (r.bool(0.2)) out.push(r.pick(['', '   ', '# a comment: with:colons', `  # ${e.id}:x:y:z:1.2.3.4`, `${OWN}:msu:library:self.example.org:127.0.0.1`]));
      const tail = e.newFormat ? [r.pick(['https', 'http']), 'intdom', 'more'] : [e.address];
      out.push([e.id, e.domain, e.role, e.hostname, ...tail].map((f) => `${sp()}${f}${sp()}`).join(':'));
    }
    return { entries, text: out.join(r.pick(['\n', '\r\n'])) + (r.bool(0.5) ? '\n' : '') };
  };
  forAll('hosts-roundtrip', g, ({ entries, text }) => {
    const { peers, diags } = parseHostsTab(text, '/h.tab', { ownId: OWN, sockDir: SOCK_DIR });
    assert.deepEqual(diags, []);
    assert.deepEqual(peers.map((p) => [p.id, p.domain, p.role, p.hostname, p.address]), entries.map((e) => [e.id, e.domain, e.role, e.hostname, e.address]));
  }, { runs: 500, show: (x) => JSON.stringify(x.text) });
});

test('duplicate ids: the last line wins, one warning per repeat naming both lines', () => {
  const g: Gen<{ ids: string[] }> = (r, size) => ({ ids: gen.array((rr) => rr.pick(['p1', 'p2', 'p3', 'p4']), 12, 1)(r, size) });
  forAll('hosts-duplicates', g, ({ ids }) => {
    const text = ids.map((id, i) => `${id}:d:r:h${i}:10.0.0.${i + 1}`).join('\n');
    const { peers, diags } = parseHostsTab(text, '/h.tab', { ownId: OWN });
    const lastLine = new Map(ids.map((id, i) => [id, i + 1]));
    assert.deepEqual(new Map(peers.map((p) => [p.id, p.line])), lastLine);
    for (const p of peers) assert.equal(p.address, `10.0.0.${p.line}`);
    assert.equal(diags.length, ids.length - lastLine.size);
    for (const d of diags) assert.match(d.message, /^duplicate peer id \S+ \(also on line \d+\); line \d+ is used$/);
  }, { runs: 300 });
});

test('an id with "/", "..", a control character or whitespace is never accepted', () => {
  const bad: Gen<string> = (r, size) => {
    const core = gen.string(ID_CHARS, 6)(r, size);
    const poison = r.pick(['/', '\x00', '\x01', '\x1b', '\x7f', '\u0085', '\u009b', ' ', '\t', '\u00a0', '\u2028', '\u3000']);
    const at = r.int(0, core.length);
    return r.bool(0.15) ? r.pick(['..', '.']) : core.slice(0, at) + poison + core.slice(at);
  };
  forAll('hosts-bad-ids', bad, (id) => {
    const { peers, diags } = parseHostsTab(`${id}:d:r:h:10.0.0.1\nok1:d:r:h:10.0.0.2\n`, '/h.tab', { ownId: OWN });
    // Leading/trailing blanks are trimmed off a field; what remains must be valid or rejected.
    const kept = peers.filter((p) => p.id !== 'ok1');
    for (const p of kept) assert.equal(validPeerId(p.id), undefined);
    if (kept.length === 0) assert.ok(diags.some((d) => d.line === 1));
    assert.ok(peers.some((p) => p.id === 'ok1'), 'a bad line costs only that line');
  }, { runs: 500, show: (id) => JSON.stringify(id) });
});
