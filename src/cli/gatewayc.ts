import { DEFAULT_CONFIG } from '../config/defaults';
import { ConfigError, formatDiag } from '../config/diag';
import { checkConfiguration } from '../daemon/configuration';
import { Daemon } from '../daemon/daemon';
import { EXIT } from '../exit-codes';
import { createLogger } from '../log';
import { takeInheritedSockets } from '../systemd/activation';
import { createNotifier } from '../systemd/notify';
import { VERSION } from '../version';
import { parseArgs } from './args';

const HELP = `Usage: gatewayc [--config FILE]... [--default-host-id ID] [--check]

Runs the gatewayc daemon in the foreground: one persistent session pool to the lond of
every server in hosts.tab, each offered to local programs as a UNIX socket.

  --config FILE         config file in LON-CAPA syntax (PerlSetVar key value); may be
                        repeated, later files override earlier ones (default ${DEFAULT_CONFIG})
  --default-host-id ID  lonHostID to use when the config sets none (the unit passes the
                        short host name)
  --check               validate the configuration, hosts.tab and certificates, print
                        problems, exit (1 on errors, 78 if gatewayc would not start)
  --version             print the version and exit
  --help                print this help and exit

Signals: HUP reloads, USR1 retries down peers and logs their state, TERM/INT stop.
Exit status 78 means the configuration is broken (nothing was started).`;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), { repeat: ['config'], value: ['default-host-id'], flag: ['check', 'version', 'help'] });
  if ('error' in args) {
    process.stderr.write(`gatewayc: ${args.error}\n${HELP}\n`);
    process.exit(EXIT.usage);
  }
  if (args.flags.has('help')) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (args.flags.has('version')) {
    process.stdout.write(`gatewayc ${VERSION}\n`);
    return;
  }
  const configFiles = args.repeats.get('config') ?? [DEFAULT_CONFIG];
  const defaultHostId = args.values.get('default-host-id');

  if (args.flags.has('check')) {
    try {
      const { loaded, diags, errors } = checkConfiguration(configFiles, defaultHostId);
      for (const d of diags) process.stderr.write(`${formatDiag({ ...d, message: `${d.severity}: ${d.message}` })}\n`);
      if (errors > 0) process.exit(EXIT.failed);
      process.stdout.write(`configuration OK: ${loaded.peers.length} peers, host id ${loaded.settings.lonHostID}\n`);
      return;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT.config);
    }
  }

  const log = createLogger('info');
  let notifier;
  try {
    notifier = createNotifier(process.env, log);
  } catch (err) {
    process.stderr.write(`gatewayc: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const inherited = takeInheritedSockets(process.env, process.pid, (problem) => log.warn(`socket activation: ${problem}`));
  const daemon = new Daemon({ configFiles, ...(defaultHostId !== undefined ? { defaultHostId } : {}), log, notifier, inherited });
  try {
    await daemon.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal(`configuration error: ${err.message}`);
      process.stderr.write(`gatewayc: ${err.message}\n`);
      process.exit(EXIT.config);
    }
    log.fatal(`cannot start: ${(err as Error).message}`);
    process.exit(1);
  }

  process.on('SIGHUP', () => void daemon.reload());
  process.on('SIGUSR1', () => {
    try {
      daemon.retry();
    } catch (err) {
      log.error(`retry failed: ${(err as Error).message}`);
    }
  });
  const stop = (): void => {
    void daemon.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();
