/**
 * `npm run demo`: the daemon in the foreground on the bundled example (example/), with a
 * small example lond (the test suite's fake lond) serving peers demo2 and demo3 on
 * 127.0.0.2 and 127.0.0.3. Ctrl-C stops both. No node flags: the example lond brings its
 * own IDEA where this node's OpenSSL has none (Debian's nodejs).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const conf = path.join(root, 'example', 'gatewayc.conf');

// The IPC channel is only there so that the example lond stops when this process dies, however it dies.
const lond = spawn(
  process.execPath,
  [path.join(root, 'build', 'test', 'support', 'fake-lond-cli.js'), '--client', 'demo1', '--port', '15663', '--peer', 'demo2@127.0.0.2', '--peer', 'demo3@127.0.0.3'],
  { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
);

process.stderr.write(
  [
    '',
    'gatewayc demo: example lond on 127.0.0.2/127.0.0.3:15663, daemon on example/gatewayc.conf.',
    'In another terminal:',
    `  ./bin/gatewayctl --config example/gatewayc.conf status`,
    `  ./bin/gatewayctl --config example/gatewayc.conf send demo2 ping`,
    `  ./bin/gatewayctl --config example/gatewayc.conf send demo3 encrypt:echo:hello`,
    'Ctrl-C stops the demo.',
    '',
  ].join('\n'),
);

// The demo's daemon runs in the foreground, not as a systemd service: whatever systemd
// handed the demo itself (run inside a container, a unit or a user session) is not for it,
// and NOTIFY_SOCKET would make it wait for the sd-notify addon, which the demo does not need.
const env = { ...process.env };
for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[name];
const daemon = spawn(process.execPath, [path.join(root, 'bin', 'gatewayc'), '--config', conf], { stdio: 'inherit', env });

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  daemon.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const status = (code: number | null, signal: NodeJS.Signals | null): string => (signal ? `killed by ${signal}` : `exit status ${code}`);
const daemonDone = new Promise<string>((resolve) =>
  daemon.on('exit', (code, signal) => {
    lond.kill('SIGTERM');
    process.exitCode = code ?? 1;
    resolve(status(code, signal));
  }),
);
const londDone = new Promise<string>((resolve) =>
  lond.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`example lond exited (${code}); stopping the demo\n`);
      stop();
    }
    resolve(status(code, signal));
  }),
);
// The last line says how both ended: with Ctrl-C npm reports its own exit status 130
// (it re-raises the SIGINT on itself), whatever the demo's was.
void Promise.all([daemonDone, londDone]).then(([d, l]) => process.stderr.write(`gatewayc demo: stopped (gatewayc ${d}, example lond ${l})\n`));
