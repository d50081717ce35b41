import * as os from 'node:os';
import { runCli } from '../ctl/main';

// `gatewayctl status | head -1` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

void runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: () => process.stdin,
  env: process.env,
  now: () => Date.now(),
  hostname: () => os.hostname().split('.')[0] ?? '',
}).then((code) => {
  // exitCode, not exit(): whatever is still buffered for a pipe gets written first.
  process.exitCode = code;
});
