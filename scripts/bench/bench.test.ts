// Checks of the benchmark's own pieces: the statistics, /proc parsing, the profile
// summary and the load generator against a real echo socket.
// Run: node --test build/scripts/bench/bench.test.js
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { runLoad } from './loadgen';
import { summarise, CpuProfile } from './profile';
import { median, parseStatTicks, parseVmRssKb, percentile, Samples } from './stats';

test('percentile is nearest-rank over the first n values', () => {
  const v = Float64Array.from([5, 1, 4, 2, 3, 99]);
  assert.equal(percentile(v, 5, 50), 3);
  assert.equal(percentile(v, 5, 99), 5);
  assert.equal(percentile(v, 5, 0), 1);
  assert.ok(Number.isNaN(percentile(v, 0, 50)));
});

test('Samples grows past its initial size and keeps every value', () => {
  const s = new Samples();
  for (let i = 0; i < 200_000; i++) s.push(i);
  assert.equal(s.length, 200_000);
  assert.equal(s.percentile(100), 199_999);
  assert.equal(s.percentile(50), 99_999);
});

test('median ignores NaN and averages the middle pair', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([NaN, 7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test('/proc parsing: utime+stime after a comm with spaces and parentheses, VmRSS', () => {
  const stat = '1234 (node (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 11 0 1000 0 0';
  assert.equal(parseStatTicks(stat), 325);
  assert.equal(parseVmRssKb('Name:\tnode\nVmPeak:\t 1 kB\nVmRSS:\t   54321 kB\n'), 54321);
  assert.ok(Number.isNaN(parseVmRssKb('Name:\tzombie\n')));
});

test('profile summary: self time per function, inclusive time through callers', () => {
  const frame = (functionName: string, lineNumber = 0) => ({ functionName, url: 'node:x', lineNumber, columnNumber: 0 });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 4] },
      { id: 2, callFrame: frame('outer', 10), children: [3] },
      { id: 3, callFrame: frame('inner', 20) },
      { id: 4, callFrame: frame('(idle)') },
    ],
    startTime: 0,
    endTime: 1000,
    // time of sample i = timeDeltas[i + 1]
    samples: [3, 3, 2, 4, 3],
    timeDeltas: [0, 100, 100, 100, 100, 0],
  };
  const s = summarise(profile, '/', 10);
  assert.equal(s.totalMs, 0.4);
  assert.equal(s.idlePct, 25);
  const inner = s.top.find((e) => e.name === 'inner');
  const outer = s.top.find((e) => e.name === 'outer');
  assert.equal(inner?.selfPct, 50);
  assert.equal(outer?.selfPct, 25);
  assert.equal(outer?.totalPct, 75);
  assert.equal(outer?.where, 'node:x:11');
});

test('the load generator measures a real echo server and counts wrong answers', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  const sock = path.join(dir, 'echo');
  // Answers "no" to every third line, so the generator must report those as wrong.
  let n = 0;
  const server = net.createServer((c) => c.on('data', (chunk: Buffer) => c.write(++n % 3 === 0 ? 'no\n' : chunk)));
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const req = Buffer.from('hello');
    const r = await runLoad({ target: { kind: 'unix', path: sock }, clients: [{ request: req, expect: req }, { request: req, expect: req }], warmupMs: 50, durationMs: 300 });
    assert.ok(r.requests > 100, `only ${r.requests} requests`);
    assert.ok(r.rps > 300);
    assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p99Ms);
    const share = r.wrong / r.requests;
    assert.ok(share > 0.25 && share < 0.42, `wrong share ${share}`);
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
