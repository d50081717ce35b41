/**
 * sd_notify(3) for a Type=notify service, through the `sd-notify` addon (libsystemd).
 * Without NOTIFY_SOCKET (a source checkout, a test) every method is a no-op and the
 * addon is never loaded, so the daemon runs where the addon was not built.
 */
import type { Logger } from '../log';

/** What this module uses of the `sd-notify` package. */
export interface SdNotifyAddon {
  /** READY=1 (sd_pid_notify with our pid). */
  ready(): void;
  /** STATUS=<text>. */
  sendStatus(text: string): void;
  /** WATCHDOG=1. */
  watchdog(): void;
  /** Any newline-separated assignments, sent as one datagram. */
  sendState(state: string): void;
}

export interface Notifier {
  /** NOTIFY_SOCKET is set: systemd listens. */
  readonly enabled: boolean;
  /** READY=1: configuration loaded and every socket listening (also after a reload). */
  ready(): void;
  /** STATUS=<one line>; a line identical to the last one sent is not sent again. */
  status(line: string): void;
  /** RELOADING=1 with MONOTONIC_USEC=, before a reload; ready() ends it. */
  reloading(): void;
  /** STOPPING=1, when shutdown begins. */
  stopping(): void;
  /**
   * WATCHDOG=1 every WATCHDOG_USEC/2 while healthy() is true, when systemd asked for a
   * watchdog (WATCHDOG_USEC set, WATCHDOG_PID unset or ours). The timer is an ordinary
   * event-loop timer on purpose: a wedged event loop stops the pings and systemd kills us.
   */
  startWatchdog(healthy: () => boolean): void;
  close(): void;
}

// The package's JS wrapper pulls in the compiled binding; both failures (missing file,
// wrong Node ABI, missing libsystemd) surface here as one exception.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadSdNotify = (): SdNotifyAddon => require('sd-notify') as SdNotifyAddon;

const NOOP_NOTIFIER: Notifier = Object.freeze({
  enabled: false,
  ready() {},
  status() {},
  reloading() {},
  stopping() {},
  startWatchdog() {},
  close() {},
});

/** The first line of an error, trimmed: dlopen and `bindings` errors span many lines. */
function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? 'unknown error';
  return first.trim();
}

/** A status must stay one assignment: no line breaks, no NUL (the addon passes a C string). */
function sanitize(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/**
 * The watchdog period in ms (half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises),
 * or undefined when systemd asked for no watchdog for this process.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[0-9]+$/.test(usec) || Number(usec) <= 0) return undefined;
  const wpid = env.WATCHDOG_PID;
  if (wpid !== undefined && wpid !== '' && Number(wpid) !== pid) return undefined;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

/**
 * Note: libsystemd reads NOTIFY_SOCKET from the process environment when sending, not
 * from `env`; `env` decides whether to notify at all and the watchdog period. So the
 * daemon must not remove NOTIFY_SOCKET from process.env.
 * `loadAddon` exists for tests.
 */
export function createNotifier(env: NodeJS.ProcessEnv, log: Logger, loadAddon: () => SdNotifyAddon = loadSdNotify): Notifier {
  if (!env.NOTIFY_SOCKET) return NOOP_NOTIFIER;

  let addon: SdNotifyAddon;
  try {
    addon = loadAddon();
  } catch (err) {
    throw new Error(`cannot load the sd-notify addon (${oneLine(err)}): systemd would wait for READY=1 forever; reinstall gatewayc`);
  }

  let lastStatus: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // systemd stops enforcing the watchdog once the service is deactivating.
  let stopping = false;

  const stopWatchdog = (): void => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };

  return {
    enabled: true,
    ready() {
      if (!closed) addon.ready();
    },
    status(line) {
      const clean = sanitize(line);
      if (closed || clean === lastStatus) return;
      lastStatus = clean;
      addon.sendStatus(clean);
    },
    reloading() {
      if (closed) return;
      // process.hrtime is CLOCK_MONOTONIC on Linux, the clock systemd compares against.
      const usec = process.hrtime.bigint() / 1000n;
      addon.sendState(`RELOADING=1\nMONOTONIC_USEC=${usec}`);
    },
    stopping() {
      stopping = true;
      if (!closed) addon.sendState('STOPPING=1');
    },
    startWatchdog(healthy) {
      stopWatchdog();
      const interval = watchdogIntervalMs(env);
      if (closed || interval === undefined) return;
      let withheld = false;
      timer = setInterval(() => {
        let ok: boolean;
        try {
          ok = healthy();
        } catch (err) {
          ok = false;
          log.error(`watchdog health check failed: ${oneLine(err)}`);
        }
        if (ok) {
          if (withheld) log.info('healthy again: watchdog pings resumed');
          withheld = false;
          addon.watchdog();
        } else if (!withheld) {
          withheld = true;
          if (!stopping) log.warn('unhealthy: watchdog pings withheld, systemd will restart gatewayc if this lasts');
        }
      }, interval);
      // The watchdog must never be what keeps the process alive.
      timer.unref();
    },
    close() {
      closed = true;
      stopWatchdog();
    },
  };
}
