/**
 * The file-system edge of src/config: reads the config files and hosts.tab and hands
 * the text to the pure parsers. Nothing else in src/config touches the disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfSource, readConf } from './conf';
import { ConfigError, Diag, errnoReason } from './diag';
import { PeerEntry, parseHostsTab } from './hosts';
import { Settings, buildSettings } from './settings';

export interface Loaded {
  settings: Settings;
  peers: PeerEntry[];
  /** Config, settings and hosts.tab warnings, in that order. */
  warnings: Diag[];
  /** Every config file read, includes too, in order. */
  files: string[];
  hostsFile: string;
}

export const fsSource: ConfSource = {
  readFile: (p) => fs.readFileSync(p, 'utf8'),
  listDir: (d) => fs.readdirSync(d),
};

/**
 * The settings of the given config files, judging only the keys named (no hosts.tab, no
 * lonHostID): how gatewayctl finds the daemon's sockets. A bad value elsewhere must not
 * keep `gatewayctl reload` from reaching the daemon to be refused there, with the reason.
 * No files at all gives the built-in defaults. Throws ConfigError.
 */
export function readSomeSettings(configFiles: string[], keys: string[]): Settings {
  const conf = configFiles.length > 0 ? readConf(configFiles, fsSource) : { values: new Map(), warnings: [], files: [] };
  const values = new Map([...conf.values].filter(([k]) => keys.includes(k)));
  return buildSettings({ ...conf, values }, { requireHostId: false }).settings;
}

export function loadAll(configFiles: string[], opts: { requireHostId?: boolean } = {}): Loaded {
  if (configFiles.length === 0) throw new ConfigError({ file: '', message: 'no config file given (use --config FILE)' });
  const conf = readConf(configFiles, fsSource);
  const { settings, warnings } = buildSettings(conf, opts);
  const hostsFile = path.join(settings.lonTabDir, 'hosts.tab');
  let text: string;
  try {
    text = fs.readFileSync(hostsFile, 'utf8');
  } catch (err) {
    const set = conf.values.get('lonTabDir');
    const why = set ? ` (lonTabDir is set at ${set.file}:${set.line})` : ' (lonTabDir is not set; that is its default)';
    throw new ConfigError({ file: hostsFile, message: `cannot read ${hostsFile}: ${errnoReason(err)}${why}` });
  }
  const hosts = parseHostsTab(text, hostsFile, { ownId: settings.lonHostID, sockDir: settings.lonSockDir });
  return { settings, peers: hosts.peers, warnings: [...conf.warnings, ...warnings, ...hosts.diags], files: conf.files, hostsFile };
}
