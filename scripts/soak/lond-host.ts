// The soak's second process: every fake lond (test/support/fake-lond.ts), their fault
// switches, and what only a lond can see — which delayed messages arrived, whether a live
// request arrived twice, how many sessions a peer has open. Driven by londs.ts over IPC.
// Needs OpenSSL's IDEA: londs.ts forks it with --openssl-legacy-provider.
import { FakeLond, LondHandler } from '../../test/support/fake-lond';
import type { FakeKeyModes, FakeTlsOptions } from '../../test/support/fake-lond-tls';
import type { HostCommand, HostEvent, HostReply, LondSpec, PeerStats } from './londs';
import { Rng } from './rng';
import { liveAnswer, parseRequest } from './wire';

interface Slot {
  spec: LondSpec;
  lond: FakeLond | null;
}

/** One peer id: its lond(s) (a second address stands ready for reloads that move it) and switches. */
interface Peer {
  id: string;
  slots: Slot[];
  stall: boolean;
  half: boolean;
  refuse: boolean;
  tlscut: boolean;
  rng: Rng;
  tls: { ca: string; cert: string; key: string };
  /** TCP connections open from the daemon and not ended by `exit`, across the peer's londs. */
  live: Set<string>;
  maxLive: number;
  /** Times the count went above gatewaycMaxSessions and was back within OVER_GRACE_MS. */
  momentary: number;
  overCheck: NodeJS.Timeout | undefined;
  /** Counters of lond instances already stopped (a kill starts new ones). */
  past: { connections: number; handshakes: number; requests: number; malformed: number };
  tlsErrors: number;
  foreign: number;
}

const peers = new Map<string, Peer>();
const liveSeen = new Set<string>();
const keys = new Set<string>();
let clientId = '';
let port = 0;
let maxSessions = 4;
let serial = 0;

/** A peer above gatewaycMaxSessions for this long is a violation, not a socket closing while another opens. */
const OVER_GRACE_MS = 300;

function send(e: HostEvent): void {
  process.send?.(e);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function handlerFor(p: Peer): LondHandler {
  return (cmd: Buffer) => {
    const r = parseRequest(cmd);
    if (r.kind === 'live') {
      if (liveSeen.has(r.token)) send({ ev: 'live-twice', id: p.id, token: r.token });
      else liveSeen.add(r.token);
      return liveAnswer(r.token, r.size);
    }
    if (r.kind === 'delayed') {
      send({ ev: 'delayed', id: p.id, token: r.token, bytes: cmd.length });
      return 'ok';
    }
    p.foreign++;
    if (p.foreign <= 20) send({ ev: 'foreign', id: p.id, head: cmd.subarray(0, 40).toString('latin1') });
    return 'unknown_cmd';
  };
}

function keyModesFor(p: Peer): FakeKeyModes {
  const ssl = (): FakeTlsOptions => ({
    ...p.tls,
    ...(p.refuse ? { answer: 'refused' } : {}),
    // Anywhere from inside the TLS handshake to inside the key line.
    ...(p.tlscut ? { cutAfterBytes: p.rng.int(50, 2500) } : {}),
  });
  return { ssl, local: p.refuse ? { answer: 'refused' } : true };
}

function apply(p: Peer): void {
  for (const s of p.slots) {
    if (!s.lond) continue;
    s.lond.faults.stallRequests = p.stall;
    s.lond.faults.halfAnswer = p.half;
    s.lond.faults.refuseInit = p.refuse;
    s.lond.keyModes = keyModesFor(p);
  }
}

function track(p: Peer, lond: FakeLond): void {
  const tag = `${serial++}:`;
  lond.on('connection', (session: number) => {
    p.live.add(tag + session);
    if (p.live.size > p.maxLive) p.maxLive = p.live.size;
    if (p.live.size > maxSessions && !p.overCheck) {
      p.overCheck = setTimeout(() => {
        p.overCheck = undefined;
        if (p.live.size > maxSessions) send({ ev: 'over', id: p.id, live: p.live.size, max: maxSessions });
        else p.momentary++;
      }, OVER_GRACE_MS);
    }
  });
  const gone = (session: number): void => {
    p.live.delete(tag + session);
  };
  lond.on('exit', gone);
  lond.on('close', gone);
  lond.on('handshake', (session: number) => {
    const k = lond.sessionKeys[session];
    if (k) keys.add(k.toString('hex'));
  });
  lond.on('malformed', () => send({ ev: 'malformed', id: p.id }));
  lond.on('tls-error', () => {
    p.tlsErrors++;
  });
}

async function startSlot(p: Peer, s: Slot, atPort: number): Promise<FakeLond> {
  const lond = await FakeLond.start({
    id: p.id,
    clientId,
    host: s.spec.address,
    port: atPort,
    serviceTimeMs: s.spec.serviceMs,
    encryptAnswers: s.spec.encryptAnswers,
    handler: handlerFor(p),
    keyModes: keyModesFor(p),
    faults: { stallRequests: p.stall, halfAnswer: p.half, refuseInit: p.refuse },
  });
  track(p, lond);
  s.lond = lond;
  return lond;
}

async function stopSlot(p: Peer, s: Slot): Promise<void> {
  const l = s.lond;
  if (!l) return;
  s.lond = null;
  await l.stop();
  p.past.connections += l.stats.connections;
  p.past.handshakes += l.stats.handshakes;
  p.past.requests += l.stats.requests;
  p.past.malformed += l.stats.malformed;
}

async function startAll(cmd: Extract<HostCommand, { op: 'start' }>): Promise<number> {
  clientId = cmd.clientId;
  maxSessions = cmd.maxSessions;
  for (const spec of cmd.londs) {
    let p = peers.get(spec.id);
    if (!p) {
      const pem = cmd.certs[spec.id];
      if (!pem) throw new Error(`no certificate for ${spec.id}`);
      p = {
        id: spec.id,
        slots: [],
        stall: false,
        half: false,
        refuse: false,
        tlscut: false,
        rng: new Rng(0),
        tls: { ca: cmd.ca, cert: pem.cert, key: pem.key },
        live: new Set(),
        maxLive: 0,
        momentary: 0,
        overCheck: undefined,
        past: { connections: 0, handshakes: 0, requests: 0, malformed: 0 },
        tlsErrors: 0,
        foreign: 0,
      };
      peers.set(spec.id, p);
    }
    p.slots.push({ spec, lond: null });
  }
  // All londs share one port (gatewayc has one londPort); the first picks a free one.
  for (let attempt = 0; attempt < 20; attempt++) {
    port = 0;
    try {
      for (const p of peers.values()) {
        for (const s of p.slots) port = (await startSlot(p, s, port)).port;
      }
      return port;
    } catch (err) {
      for (const p of peers.values()) for (const s of p.slots) await stopSlot(p, s);
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('no port free on every lond address after 20 attempts');
}

function peer(id: string): Peer {
  const p = peers.get(id);
  if (!p) throw new Error(`no fake lond ${id}`);
  return p;
}

async function restart(p: Peer): Promise<void> {
  for (const s of p.slots) {
    if (s.lond) continue;
    for (let attempt = 0; ; attempt++) {
      try {
        await startSlot(p, s, port);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 25) throw err;
        await sleep(200);
      }
    }
  }
}

function stats(): Record<string, PeerStats> {
  const out: Record<string, PeerStats> = {};
  for (const p of peers.values()) {
    const s: PeerStats = { ...p.past, live: p.live.size, maxLive: p.maxLive, momentary: p.momentary, tlsErrors: p.tlsErrors, foreign: p.foreign };
    for (const slot of p.slots) {
      const l = slot.lond;
      if (!l) continue;
      s.connections += l.stats.connections;
      s.handshakes += l.stats.handshakes;
      s.requests += l.stats.requests;
      s.malformed += l.stats.malformed;
    }
    out[p.id] = s;
  }
  return out;
}

async function handle(cmd: HostCommand): Promise<HostReply> {
  switch (cmd.op) {
    case 'start':
      return { op: 'ready', port: await startAll(cmd) };
    case 'kill': {
      const p = peer(cmd.id);
      for (const s of p.slots) await stopSlot(p, s);
      return { op: 'ok' };
    }
    case 'restart':
      await restart(peer(cmd.id));
      return { op: 'ok' };
    case 'switch': {
      const p = peer(cmd.id);
      p[cmd.what] = cmd.on;
      p.rng = new Rng(cmd.seed);
      apply(p);
      return { op: 'ok' };
    }
    case 'cut':
      for (const s of peer(cmd.id).slots) s.lond?.killAll();
      return { op: 'ok' };
    case 'stats':
      return { op: 'stats', peers: stats() };
    case 'keys':
      return { op: 'keys', keys: [...keys] };
  }
}

if (require.main === module) {
  process.on('message', (m: { rid: number; cmd: HostCommand }) => {
    handle(m.cmd).then(
      (reply) => process.send?.({ rid: m.rid, reply }),
      (err: unknown) => process.send?.({ rid: m.rid, reply: { op: 'error', message: err instanceof Error ? err.message : String(err) } }),
    );
  });
  // The fake lond keeps what it saw for tests; a long run must not grow on it.
  setInterval(() => {
    for (const p of peers.values()) {
      for (const s of p.slots) {
        const l = s.lond;
        if (!l) continue;
        l.received.length = 0;
        l.challenges.length = 0;
        l.buildkeys.length = 0;
        l.sessionKeys.length = 0;
        l.tlsReports.length = 0;
        l.tlsErrors.length = 0;
        l.localKeyFiles.length = 0;
      }
    }
  }, 1000).unref();
  process.on('disconnect', () => process.exit(0));
}
