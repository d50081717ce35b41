/**
 * Where the daemon's sockets are: read from the same config files the daemon reads, so
 * that `gatewayctl --config X` finds a daemon started with `gatewayc --config X`.
 * Only the settings are needed here (no hosts.tab, no lonHostID).
 */
import * as fs from 'node:fs';
import { readConf } from '../config/conf';
import { ConfigError } from '../config/diag';
import { fsSource } from '../config/load';
import { buildSettings, Settings } from '../config/settings';
import { CtlError, EXIT } from './client';
import { DEFAULT_CONFIG } from './help';

/**
 * The settings of the given config files, judging only the keys named: a bad value
 * elsewhere must not keep `gatewayctl reload` from reaching the daemon to be refused
 * there, with the reason. With no files given, the default config; if that does not
 * exist either (a source checkout), the built-in defaults.
 */
export function readSettings(files: string[] | undefined, keys: string[], hint: string): Settings {
  const list = files ?? (fs.existsSync(DEFAULT_CONFIG) ? [DEFAULT_CONFIG] : []);
  try {
    const conf = list.length > 0 ? readConf(list, fsSource) : { values: new Map(), warnings: [], files: [] };
    const values = new Map([...conf.values].filter(([k]) => keys.includes(k)));
    return buildSettings({ ...conf, values }, { requireHostId: false }).settings;
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
