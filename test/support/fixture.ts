import assert from 'node:assert/strict';
import * as net from 'node:net';
import { FakeLond, LondFaults, LondNetwork, LondNetworkOptions, startLondNetwork } from './fake-lond';
import { startDaemon, TestDaemon } from './daemon';

export type Network = LondNetwork;

/** Teardown steps of a test file, run in reverse order (register with `after`/`afterEach`). */
export class Cleanup {
  private steps: (() => Promise<unknown> | void)[] = [];

  add(step: () => Promise<unknown> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) await step();
  }
}

export interface Setup {
  hostId: string;
  /** Peers served by fake londs on 127.0.0.2.. (one port). */
  ids: string[];
  settings?: Record<string, string | number>;
  lond?: LondNetworkOptions;
  /** Faults set on single londs before the daemon's first connect. */
  faults?: Record<string, LondFaults>;
  /** Further hosts.tab peers with addresses of their own (nothing listening, bad names...). */
  extra?: Record<string, string>;
  /** Wait until every peer without faults is up (default false). */
  waitUp?: boolean;
  /** Run the daemon as this user (see startDaemon). */
  user?: { uid: number; gid: number };
}

/** Fake londs plus the real daemon configured for them, both torn down by `cleanup`. */
export async function londsAndDaemon(cleanup: Cleanup, s: Setup): Promise<{ net: Network; d: TestDaemon }> {
  const net = await startLondNetwork(s.ids, s.hostId, s.lond ?? {});
  cleanup.add(() => net.stop());
  for (const [id, f] of Object.entries(s.faults ?? {})) Object.assign(lond(net, id).faults, f);
  const peers = [...s.ids.map((id) => ({ id, address: net.addressOf(id) })), ...Object.entries(s.extra ?? {}).map(([id, address]) => ({ id, address }))];
  const d = await startDaemon({ hostId: s.hostId, port: net.port, peers, settings: s.settings ?? {}, ...(s.user ? { user: s.user } : {}) });
  cleanup.add(async () => {
    await d.stop();
    d.cleanup();
  });
  if (s.waitUp) {
    // Healthy peers are up before the test starts: a slow first handshake on a loaded
    // machine must not be mistaken for a fault under short request timeouts.
    const healthy = s.ids.filter((id) => !(id in (s.faults ?? {})));
    await Promise.all(healthy.map((id) => d.waitLog((l) => l.peer === id && l.event === 'peer.up', 10_000, `${id} up`)));
  }
  return { net, d };
}

export function lond(net: Network, id: string): FakeLond {
  const l = net.londs.get(id);
  assert.ok(l, `no fake lond ${id}`);
  return l;
}

/** One JSON request on the daemon's control socket, its reply. */
export function control(d: TestDaemon, req: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(d.controlPath);
    let buf = '';
    c.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        c.destroy();
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      }
    });
    c.on('error', reject);
    c.write(`${JSON.stringify(req)}\n`);
  });
}
