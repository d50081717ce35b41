// The soak's fake londs live in a process of their own (lond-host.ts), as in the
// benchmark, so that they neither steal the load generator's event loop nor share its
// OpenSSL set-up. This is the parent's side: typed commands with replies, and the events
// the londs report on their own (a delayed message received, too many sessions).
import { ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';

export interface LondSpec {
  id: string;
  address: string;
  serviceMs: number;
  encryptAnswers: boolean;
}

export interface PemPair {
  cert: string;
  key: string;
}

export type LondSwitch = 'stall' | 'half' | 'refuse' | 'tlscut';

export type HostCommand =
  | { op: 'start'; clientId: string; londs: LondSpec[]; ca: string; certs: Record<string, PemPair>; maxSessions: number }
  | { op: 'kill'; id: string }
  | { op: 'restart'; id: string }
  | { op: 'switch'; id: string; what: LondSwitch; on: boolean; seed: number }
  | { op: 'cut'; id: string }
  | { op: 'stats' }
  | { op: 'keys' };

export interface PeerStats {
  connections: number;
  handshakes: number;
  requests: number;
  live: number;
  maxLive: number;
  momentary: number;
  tlsErrors: number;
  malformed: number;
  foreign: number;
}

export type HostReply =
  | { op: 'ready'; port: number }
  | { op: 'ok' }
  | { op: 'stats'; peers: Record<string, PeerStats> }
  | { op: 'keys'; keys: string[] }
  | { op: 'error'; message: string };

export type HostEvent =
  | { ev: 'delayed'; id: string; token: string; bytes: number }
  | { ev: 'live-twice'; id: string; token: string }
  | { ev: 'over'; id: string; live: number; max: number }
  | { ev: 'malformed'; id: string }
  | { ev: 'foreign'; id: string; head: string };

type Envelope = { rid: number; reply: HostReply } | HostEvent;

export class LondHost {
  onEvent: (e: HostEvent) => void = () => undefined;
  private readonly waiting = new Map<number, (r: HostReply) => void>();
  private nextRid = 1;

  private constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: Envelope) => {
      if ('rid' in m) {
        const w = this.waiting.get(m.rid);
        this.waiting.delete(m.rid);
        w?.(m.reply);
      } else {
        this.onEvent(m);
      }
    });
    proc.on('exit', () => {
      for (const w of this.waiting.values()) w({ op: 'error', message: 'the lond process exited' });
      this.waiting.clear();
    });
  }

  /** OpenSSL's IDEA (the fake lond's, independent of gatewayc's) needs the legacy provider. */
  static start(): LondHost {
    const proc = fork(path.join(__dirname, 'lond-host.js'), [], {
      execArgv: ['--openssl-legacy-provider'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new LondHost(proc);
  }

  get pid(): number {
    return this.proc.pid as number;
  }

  async call(cmd: HostCommand): Promise<HostReply> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) throw new Error('the lond process is gone');
    const rid = this.nextRid++;
    const reply = await new Promise<HostReply>((resolve) => {
      this.waiting.set(rid, resolve);
      this.proc.send({ rid, cmd });
    });
    if (reply.op === 'error') throw new Error(`fake londs: ${reply.message}`);
    return reply;
  }

  async stats(): Promise<Record<string, PeerStats>> {
    const r = await this.call({ op: 'stats' });
    return r.op === 'stats' ? r.peers : {};
  }

  async keys(): Promise<string[]> {
    const r = await this.call({ op: 'keys' });
    return r.op === 'keys' ? r.keys : [];
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.disconnect();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
