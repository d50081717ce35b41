// The daemon-wide byte budget: who may go on when it is full, and who is cut.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BudgetHolder, ByteBudget } from '../../src/util/budget';
import { FakeClock } from '../peer/fakes';

function budget(limit = 100) {
  const clock = new FakeClock();
  return { clock, b: new ByteBudget({ limit, clock, stallMs: 10_000 }) };
}

test('full at the limit; clients waiting for room resume only once it is below again', () => {
  const { b } = budget();
  const woken: string[] = [];
  b.charge(100);
  assert.ok(b.full);
  b.waitForRoom({ resume: () => woken.push('client') });
  b.charge(-1);
  assert.deepEqual(woken, ['client']);
  assert.equal(b.bytes, 99);
});

test('one session at a time may overrun; the slot passes on only when half-read answers alone fill the budget', () => {
  const { b } = budget();
  const a = {};
  const c = {};
  const woken: string[] = [];
  b.chargeAnswer(60);
  b.chargeAnswer(50);
  assert.ok(b.full);
  assert.equal(b.mayOverrun(a), true);
  assert.equal(b.mayOverrun(c), false);
  b.waitForSlot({ resume: () => woken.push('c') });
  // a finishes: its 60 bytes are a client's now, c's 50 half-read bytes alone do not fill the budget.
  b.charge(60);
  b.chargeAnswer(-60);
  b.endOverrun(a);
  assert.deepEqual(woken, [], 'clients must make room first');
  assert.equal(b.bytes, 110);
  b.charge(-60); // the client read it
  assert.deepEqual(woken, ['c']);
});

test('half-read answers that fill the budget alone: the slot passes on, so answers always complete', () => {
  const { b } = budget();
  const a = {};
  const woken: string[] = [];
  b.chargeAnswer(70);
  b.chargeAnswer(70);
  assert.ok(b.mayOverrun(a));
  b.waitForSlot({ resume: () => woken.push('next') });
  b.chargeAnswer(-70); // a gave up (its session failed)
  b.endOverrun(a);
  assert.deepEqual(woken, ['next']);
});

test('clients that read nothing for stallMs while full are cut, the largest first, until there is room', () => {
  const { clock, b } = budget(100);
  const cut: string[] = [];
  const holder = (name: string, bytes: number, since: number | undefined): BudgetHolder => ({
    unsentBytes: () => bytes,
    stalledSince: () => since,
    evict: () => {
      cut.push(name);
      b.charge(-bytes);
    },
  });
  const t0 = clock.now();
  b.addHolder(holder('reader', 50, undefined));
  b.addHolder(holder('small', 20, t0));
  b.addHolder(holder('big', 60, t0));
  b.charge(130);
  clock.advance(9_000);
  assert.deepEqual(cut, []);
  clock.advance(2_000);
  assert.deepEqual(cut, ['big'], 'cut until below the limit, largest first; a client that reads is never cut');
});
