/**
 * Where the daemon's sockets are: read from the same config files the daemon reads, so
 * that `gatewayctl --config X` finds a daemon started with `gatewayc --config X`.
 * Only the settings are needed here (no hosts.tab, no lonHostID).
 */
import * as fs from 'node:fs';
import { ConfigError } from '../config/diag';
import { readSomeSettings } from '../config/load';
import type { Settings } from '../config/settings';
import { EXIT } from '../exit-codes';
import { CtlError } from './client';
import { DEFAULT_CONFIG } from '../config/defaults';

/** With no files given, the default config; if that does not exist either (a source checkout), the built-in defaults. */
function readSettings(files: string[] | undefined, keys: string[], hint: string): Settings {
  const list = files ?? (fs.existsSync(DEFAULT_CONFIG) ? [DEFAULT_CONFIG] : []);
  try {
    return readSomeSettings(list, keys);
  } catch (err) {
    if (err instanceof ConfigError) throw new CtlError(`${err.message} (${hint})`, EXIT.config);
    throw err;
  }
}

export function controlSocketPath(opts: { socket?: string; config?: string[] }): string {
  if (opts.socket !== undefined) return opts.socket;
  return readSettings(opts.config, ['gatewaycControlSocket'], 'or name the control socket with --socket PATH').controlSocket;
}

export function peerSocketDir(opts: { sockDir?: string; config?: string[] }): string {
  if (opts.sockDir !== undefined) return opts.sockDir;
  return readSettings(opts.config, ['lonSockDir'], 'or name the socket directory with --sock-dir DIR').lonSockDir;
}
