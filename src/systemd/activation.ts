/**
 * systemd socket activation (sd_listen_fds(3)): the listening sockets systemd opened for
 * us arrive as descriptors 3, 4, … with LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES in the
 * environment. Small enough to do here rather than through libsystemd, and pure apart
 * from removing the three variables so that no child process mistakes them for its own.
 */

/** The first passed descriptor (SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;

/** The name sd_listen_fds_with_names(3) gives every descriptor when LISTEN_FDNAMES is absent. */
const UNKNOWN_FD_NAME = 'unknown';

/**
 * Far more than any real unit passes (one socket per peer plus the control socket); a
 * larger count means a corrupt environment, not sockets to adopt.
 */
const MAX_LISTEN_FDS = 65536;

export interface ListenEnv {
  /** Name → descriptors, in LISTEN_FDS order; a name may carry several descriptors. */
  fds: Map<string, number[]>;
  /** Why variables that were meant for us could not be used; for the caller to log. */
  problem?: string;
}

const DECIMAL = /^[0-9]+$/;

/**
 * The descriptors systemd passed to process `pid`, by name. No LISTEN_PID or no
 * LISTEN_FDS means "not socket-activated" and is no problem. Anything that would make
 * libsystemd return an error gives an empty map and a `problem`: the caller then creates
 * its own sockets, which is always a working fallback.
 */
export function parseListenEnv(env: NodeJS.ProcessEnv, pid: number): ListenEnv {
  const listenPid = env.LISTEN_PID;
  const listenFds = env.LISTEN_FDS;
  if (listenPid === undefined || listenFds === undefined) return { fds: new Map() };
  const empty = (problem: string): ListenEnv => ({ fds: new Map(), problem });

  if (!DECIMAL.test(listenPid) || Number(listenPid) <= 0) {
    return empty(`LISTEN_PID=${JSON.stringify(listenPid)} is not a process id: inherited sockets ignored`);
  }
  if (Number(listenPid) !== pid) {
    // Happens when a wrapper runs the daemon as a child instead of exec'ing it.
    return empty(`LISTEN_PID=${listenPid} names another process (this is ${pid}): inherited sockets ignored`);
  }
  if (!DECIMAL.test(listenFds) || Number(listenFds) > MAX_LISTEN_FDS) {
    return empty(`LISTEN_FDS=${JSON.stringify(listenFds)} is not a descriptor count: inherited sockets ignored`);
  }
  const n = Number(listenFds);
  if (n === 0) return { fds: new Map() };

  let names: string[];
  const fdNames = env.LISTEN_FDNAMES;
  if (fdNames === undefined) {
    names = new Array<string>(n).fill(UNKNOWN_FD_NAME);
  } else {
    // As libsystemd splits it: every ':' separates, so "a::b" has an empty middle name.
    names = fdNames === '' ? [] : fdNames.split(':');
    if (names.length !== n) {
      return empty(`LISTEN_FDNAMES has ${names.length} names for LISTEN_FDS=${n} descriptors: inherited sockets ignored`);
    }
  }

  const fds = new Map<string, number[]>();
  names.forEach((name, i) => {
    const list = fds.get(name);
    if (list) list.push(LISTEN_FDS_START + i);
    else fds.set(name, [LISTEN_FDS_START + i]);
  });
  return { fds };
}

/**
 * Takes the sockets systemd passed to this process and removes LISTEN_PID, LISTEN_FDS
 * and LISTEN_FDNAMES from `env` when they were addressed to `pid` (usable or not).
 * Variables addressed to another process are left alone. A problem worth logging goes
 * to `onProblem`; the result is then empty.
 */
export function takeInheritedSockets(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
  onProblem?: (problem: string) => void,
): Map<string, number[]> {
  const parsed = parseListenEnv(env, pid);
  if (env.LISTEN_PID !== undefined && DECIMAL.test(env.LISTEN_PID) && Number(env.LISTEN_PID) === pid) {
    delete env.LISTEN_PID;
    delete env.LISTEN_FDS;
    delete env.LISTEN_FDNAMES;
  }
  if (parsed.problem !== undefined && onProblem) onProblem(parsed.problem);
  return parsed.fds;
}
