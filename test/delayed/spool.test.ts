// The spool on a real directory, without a daemon: what read() makes of each kind of
// entry, the order of delivery, and scans of a large backlog.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { FirstNames, SortedNames, sortKey } from '../../src/delayed/sorted';
import { REJECTED_DIR, Spool, SpoolRead } from '../../src/delayed/spool';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function spoolIn(peers: string[], maxMessageBytes = 1024, limits?: { index?: number; stuck?: number }): { dir: string; spool: Spool; events: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayc-spool-'));
  dirs.push(dir);
  const events: string[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void events.push(String((JSON.parse(l) as { event?: string }).event)) });
  const spool = new Spool({ dir, rescanMs: 3_600_000, maxMessageBytes, ...(limits ? { limits } : {}) }, log);
  spool.setPeers(peers);
  return { dir, spool, events };
}

const line = (r: SpoolRead): string => ('line' in r ? r.line.toString('latin1') : `skip:${r.skip}`);

describe('reading entries', () => {
  test('a message is its first line; every other kind of entry is set aside, once', async () => {
    const { dir, spool, events } = spoolIn(['p'], 64);
    const secret = path.join(dir, '..', `secret-${path.basename(dir)}`);
    fs.writeFileSync(secret, 'put:secret\n');
    dirs.push(secret);
    fs.writeFileSync(path.join(dir, '1.1.1.put.p'), 'put:one\nignored second line\n');
    fs.writeFileSync(path.join(dir, '1.1.2.put.p'), 'put:no-newline');
    fs.utimesSync(path.join(dir, '1.1.2.put.p'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    fs.symlinkSync(secret, path.join(dir, '1.2.1.link.p'));
    fs.symlinkSync('/dev/zero', path.join(dir, '1.2.2.zero.p'));
    assert.equal(spawnSync('mkfifo', [path.join(dir, '1.2.3.fifo.p')]).status, 0);
    fs.mkdirSync(path.join(dir, '1.2.4.dir.p'));
    fs.linkSync(secret, path.join(dir, '1.2.5.hard.p'));
    fs.writeFileSync(path.join(dir, '1.2.6.long.p'), `put:${'x'.repeat(100)}\n`);
    fs.writeFileSync(path.join(dir, '1.3.1.empty.p'), '');
    fs.utimesSync(path.join(dir, '1.3.1.empty.p'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    fs.writeFileSync(path.join(dir, '1.3.2.fresh.p'), 'put:being-writt');
    await spool.scan();
    const got: Record<string, string> = {};
    for (let name = spool.next('p'); name !== undefined; name = spool.next('p', name)) got[name] = line(await spool.read(name));
    assert.deepEqual(got, {
      '1.1.1.put.p': 'put:one',
      '1.1.2.put.p': 'put:no-newline',
      '1.2.1.link.p': 'skip:rejected',
      '1.2.2.zero.p': 'skip:rejected',
      // 1.2.3.fifo.p and 1.2.4.dir.p: set aside by the scan, by their type, never indexed
      '1.2.5.hard.p': 'skip:rejected',
      '1.2.6.long.p': 'skip:rejected',
      '1.3.1.empty.p': 'skip:rejected',
      '1.3.2.fresh.p': 'skip:incomplete',
    });
    assert.deepEqual(fs.readdirSync(path.join(dir, REJECTED_DIR)).sort(), ['1.2.1.link.p', '1.2.2.zero.p', '1.2.3.fifo.p', '1.2.4.dir.p', '1.2.5.hard.p', '1.2.6.long.p', '1.3.1.empty.p']);
    assert.equal(fs.readFileSync(secret, 'utf8'), 'put:secret\n');
    assert.equal(events.filter((e) => e === 'delayed.rejected').length, 7);
    await spool.scan();
    assert.equal(events.filter((e) => e === 'delayed.rejected').length, 7, 'each entry is reported once');
    const { files: listed } = await spool.describe('p');
    assert.deepEqual(listed.filter((e) => e.rejected !== null).map((e) => e.name).sort(), fs.readdirSync(path.join(dir, REJECTED_DIR)).map((n) => `${REJECTED_DIR}/${n}`).sort());
    assert.ok(listed.filter((e) => e.rejected !== null).every((e) => e.rejected && e.rejected.length > 0));
  });

  test('remove() forgets a delivered message; a vanished one is skipped', async () => {
    const { dir, spool } = spoolIn(['p']);
    fs.writeFileSync(path.join(dir, '5.p'), 'put:x\n');
    fs.writeFileSync(path.join(dir, '6.p'), 'put:y\n');
    await spool.scan();
    await spool.remove('5.p');
    assert.equal(spool.next('p'), '6.p');
    fs.rmSync(path.join(dir, '6.p'));
    assert.equal(line(await spool.read('6.p')), 'skip:vanished');
    assert.equal(spool.backlog('p'), 0);
  });
});

describe('order and scale', () => {
  test('numbers in names compare as numbers; the longest matching peer id owns a name', async () => {
    const { dir, spool } = spoolIn(['b', 'a.b']);
    for (const n of ['10.1.put.b', '9.1.put.b', '9.10.put.b', '9.2.put.b', '1.x.a.b']) fs.writeFileSync(path.join(dir, n), 'put:x\n');
    await spool.scan();
    const order: string[] = [];
    for (let n = spool.next('b'); n !== undefined; n = spool.next('b', n)) order.push(n);
    assert.deepEqual(order, ['9.1.put.b', '9.2.put.b', '9.10.put.b', '10.1.put.b']);
    assert.equal(spool.next('a.b'), '1.x.a.b');
  });

  test('SortedNames agrees with a plain sort by key, whatever the order of insertion and removal', () => {
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 48271) % 2147483647), seed % n);
    const s = new SortedNames();
    const model = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const name = `${rnd(2000)}.${rnd(50)}.${rnd(3) === 0 ? '0' : ''}${rnd(9)}.put.p`;
      if (rnd(4) === 0 && model.size > 0) {
        const victim = [...model][rnd(model.size)] as string;
        s.remove(victim);
        model.delete(victim);
      } else if (rnd(5) === 0) {
        const batch = [name, `${name}.x`, `0${name}`];
        s.insertMany(batch);
        for (const b of batch) model.add(b);
      } else {
        s.insert(name);
        model.add(name);
      }
    }
    const expected = [...model].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    assert.deepEqual(s.all(), expected);
    for (let i = 0; i + 1 < expected.length; i += 97) assert.equal(s.after(expected[i]), expected[i + 1]);
  });

  test('a scan of 20,000 files lets the event loop run while it reads them', async () => {
    const { dir, spool } = spoolIn(['p']);
    for (let i = 0; i < 20_000; i++) fs.writeFileSync(path.join(dir, `${1_700_000_000 + (i % 997)}.${i}.put.p`), 'put:x\n');
    let turns = 0;
    let running = true;
    const tick = (): void => {
      if (!running) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    await spool.scan();
    running = false;
    assert.equal(spool.backlog('p'), 20_000);
    assert.ok(turns >= 4, `the event loop turned only ${turns} times during the scan`);
    const first = spool.next('p') as string;
    assert.match(first, /^1700000000\.0\.put\.p$/);
  });

  test('FirstNames keeps the first names of any number offered, in delivery order', () => {
    const names = Array.from({ length: 5000 }, (_, i) => `${1_700_000_000 + ((i * 7919) % 5000)}.${i % 3}.put.p`);
    const first = new FirstNames(100);
    for (const n of names) first.offer(n);
    const expected = [...names].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1)).slice(0, 100);
    assert.deepEqual(first.names(), expected);
    assert.equal(first.offered, 5000);
  });

  test('a spool of far more files than it holds in memory: its share, oldest first; all delivered once, in order', async () => {
    const { dir, spool } = spoolIn(['p', 'q'], 1024, { index: 100 }); // share: 64 names each
    const order = Array.from({ length: 1000 }, (_, i) => (i * 389) % 1000); // written out of order
    for (const i of order) fs.writeFileSync(path.join(dir, `${1_700_000_000 + i}.1.put.p`), `put:${i}\n`);
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(dir, `${1_700_000_000 + i}.1.put.q`), `put:q${i}\n`);
    await spool.scan();
    assert.equal(spool.backlog('p'), 1000);
    assert.equal(spool.backlog('q'), 10);
    const listed = await spool.describe('p');
    assert.equal(listed.files.length, 64, 'only its share is held');
    assert.equal(listed.notListed.waiting, 936);
    const delivered: string[] = [];
    let scans = 0;
    while (spool.backlog('p') > 0) {
      const name = spool.next('p');
      if (name === undefined) {
        // What drop() queues in the running daemon: the scan that brings in the next share.
        await spool.scan();
        assert.ok(++scans < 100, 'the backlog does not come in');
        continue;
      }
      const r = await spool.read(name);
      assert.ok('line' in r, `${name}: ${JSON.stringify(r)}`);
      delivered.push(r.line.toString('latin1'));
      spool.release(r.line);
      await spool.remove(name);
    }
    assert.deepEqual(delivered, Array.from({ length: 1000 }, (_, i) => `put:${i}`));
    assert.equal(scans, Math.ceil(1000 / 64) - 1);
    assert.equal(spool.backlog('q'), 10, 'the other peer keeps its own share');
  });

  test('a full share: a newer file waits on disk, an older one takes the place of the newest held', async () => {
    const { dir, spool } = spoolIn(['p'], 1024, { index: 64 });
    for (let i = 10; i < 110; i++) fs.writeFileSync(path.join(dir, `${1_700_000_000 + i}.1.put.p`), `put:${i}\n`);
    spool.start();
    after(() => spool.stop());
    await spool.scan();
    assert.equal(spool.backlog('p'), 100);
    fs.writeFileSync(path.join(dir, `${1_700_000_000 + 500}.1.put.p`), 'put:500\n');
    fs.writeFileSync(path.join(dir, `${1_700_000_000 + 1}.1.put.p`), 'put:1\n');
    const deadline = Date.now() + 3000;
    while (spool.backlog('p') < 102 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(spool.backlog('p'), 102);
    assert.equal(spool.next('p'), `${1_700_000_000 + 1}.1.put.p`, 'the older file is held at once');
    const { files } = await spool.describe('p');
    assert.equal(files.length, 64);
    assert.ok(!files.some((f) => f.name.startsWith('1700000500')), 'the newer one waits on disk');
  });

  test('directories and FIFOs found by a scan never take a place in the share; they are set aside after it', async () => {
    const { dir, spool } = spoolIn(['p'], 1024, { index: 64 });
    for (let i = 0; i < 5; i++) fs.mkdirSync(path.join(dir, `1.${i}.dir.p`));
    assert.equal(spawnSync('mkfifo', [path.join(dir, '1.9.fifo.p')]).status, 0);
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, `${1_700_000_000 + i}.1.put.p`), `put:${i}\n`);
    await spool.scan();
    assert.equal(spool.backlog('p'), 5);
    assert.equal(spool.next('p'), '1700000000.1.put.p');
    assert.deepEqual(fs.readdirSync(path.join(dir, REJECTED_DIR)).sort(), ['1.0.dir.p', '1.1.dir.p', '1.2.dir.p', '1.3.dir.p', '1.4.dir.p', '1.9.fifo.p']);
  });

  test('more unmovable entries than it remembers: the messages behind them are still delivered, in order', async () => {
    const { dir, spool, events } = spoolIn(['p'], 1024, { index: 64, stuck: 50 });
    // rejected/ cannot be made (a file has its name), as for a directory whose writer
    // did not let us change its parent: nothing can be moved aside.
    fs.writeFileSync(path.join(dir, REJECTED_DIR), 'in the way\n');
    for (let i = 0; i < 300; i++) fs.mkdirSync(path.join(dir, `1.${i}.dir.p`));
    for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(dir, `${1_700_000_000 + i}.1.put.p`), `put:${i}\n`);
    const delivered: string[] = [];
    for (let round = 0; round < 50 && delivered.length < 200; round++) {
      await spool.scan();
      for (let name = spool.next('p'); name !== undefined; name = spool.next('p', name)) {
        const r = await spool.read(name);
        if (!('line' in r)) continue;
        delivered.push(r.line.toString('latin1'));
        spool.release(r.line);
        await spool.remove(name);
      }
    }
    assert.deepEqual(delivered, Array.from({ length: 200 }, (_, i) => `put:${i}`));
    assert.ok(events.filter((e) => e === 'delayed.rejected').length <= 50, 'each remembered one is reported once');
    assert.ok(events.includes('delayed.rejected-many'), 'the rest are reported together');
  });
});
