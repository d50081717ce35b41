import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { COMMANDS, commandHelp, generalHelp, OPTIONS, wrap } from '../../src/ctl/help';
import { renderManPage, roffText, synopsis } from '../../src/ctl/man';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const MAN = path.join(ROOT, 'man', 'gatewayctl.8');
const COMPLETION = path.join(ROOT, 'completion', 'gatewayctl');

describe('help texts', () => {
  test('every command has a usage line, a summary and only documented options', () => {
    for (const c of COMMANDS) {
      const help = commandHelp(c);
      assert.ok(help.startsWith(`Usage: gatewayctl ${c.name}`), c.name);
      for (const o of c.options) {
        assert.ok(OPTIONS[o], `${c.name}: option ${o} is not documented`);
        assert.ok(help.includes(`--${o}`), `${c.name}: help does not show --${o}`);
      }
    }
  });

  test('the general help lists every command and the exit statuses', () => {
    const help = generalHelp();
    for (const c of COMMANDS) assert.match(help, new RegExp(`^  ${c.name}\\b`, 'm'), c.name);
    for (const code of ['0', '1', '2', '3', '4', '64', '78']) assert.match(help, new RegExp(`^  ${code} +\\S`, 'm'), `exit status ${code}`);
  });

  test('no help line is wider than 80 columns', () => {
    for (const text of [generalHelp(), ...COMMANDS.map(commandHelp)]) {
      for (const line of text.split('\n')) assert.ok([...line].length <= 80, `too wide: ${line}`);
    }
  });

  test('wrap fills words and keeps the indent', () => {
    assert.deepEqual(wrap('aaa bbb ccc `ddd`', '  ', 11), ['  aaa bbb', '  ccc ddd']);
  });
});

describe('manual page gatewayctl(8)', () => {
  test('the committed page is what scripts/gen-man.ts makes of the help texts (run: node build/scripts/gen-man.js)', () => {
    assert.equal(fs.readFileSync(MAN, 'utf8'), renderManPage());
  });

  test('it documents every command and option', () => {
    const man = renderManPage();
    for (const c of COMMANDS) assert.ok(man.includes(`.SS "\\fB${c.name}\\fR`), c.name);
    for (const o of Object.keys(OPTIONS)) assert.ok(man.includes(`\\-\\-${o.replace(/-/g, '\\-')}`), o);
  });

  test('roff escaping: backslashes and leading dots cannot become requests', () => {
    assert.equal(roffText('a\\b'), 'a\\eb');
    assert.equal(roffText('.x\n\'y'), '\\&.x\n\\&\'y');
    assert.equal(synopsis('PEER REQUEST | PEER -'), '\\fIPEER\\fR \\fIREQUEST\\fR | \\fIPEER\\fR \\fB\\-\\fR');
    assert.equal(synopsis('[--config FILE...]'), '[\\fB\\-\\-config\\fR \\fIFILE\\fR...]');
  });

  test('groff formats it without a warning', { skip: spawnSync('groff', ['--version']).status !== 0 && 'groff is not installed' }, () => {
    const r = spawnSync('groff', ['-man', '-ww', '-z', MAN], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});

/** Runs the completion function in bash for a command line ending in `words`. */
function complete(words: string[], env: NodeJS.ProcessEnv = {}): string[] {
  const script = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _gatewayctl; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script, 'bash', COMPLETION, ...words], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout.split('\n').filter((l) => l !== '');
}

describe('bash completion', () => {
  const text = fs.readFileSync(COMPLETION, 'utf8');

  test('its commands and options are those of the help texts', () => {
    const commands = /^_gatewayctl_commands="([^"]*)"/m.exec(text)?.[1]?.split(' ');
    assert.deepEqual(commands, COMMANDS.map((c) => c.name));
    for (const c of COMMANDS) {
      const m = new RegExp(`^ +\\[${c.name}\\]="([^"]*)"`, 'm').exec(text);
      assert.ok(m, `no options line for ${c.name}`);
      assert.deepEqual((m[1] as string).split(' ').filter((o) => o !== '').sort(), c.options.map((o) => `--${o}`).sort(), c.name);
    }
  });

  test('commands, then options of the command', () => {
    assert.deepEqual(complete(['gatewayctl', 're']), ['retry', 'reload']);
    assert.deepEqual(complete(['gatewayctl', 'check', '--']).sort(), ['--config', '--default-host-id', '--help', '--quiet']);
    assert.deepEqual(complete(['gatewayctl', 'help', 'de']), ['delayed']);
  });

  test('peer ids from the hosts.tab of the config, following Include, without our own id or malformed lines', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewayctl-completion-'));
    try {
      fs.mkdirSync(path.join(dir, 'tabs'));
      fs.writeFileSync(path.join(dir, 'loncapa.conf'), 'PerlSetVar lonHostID msu1\nPerlSetVar lonTabDir "tabs"\n');
      fs.writeFileSync(path.join(dir, 'gatewayc.conf'), '# test\nInclude loncapa.conf\n');
      fs.writeFileSync(
        path.join(dir, 'tabs', 'hosts.tab'),
        '# comment\nmsu1:msu:library:msu1.example:10.0.0.1\nmsul2:msu:library:l2.example:10.0.0.2\n\nnot a host line\nfsu3:fsu:access:fsu3.example:https:fsu\n',
      );
      const conf = path.join(dir, 'gatewayc.conf');
      assert.deepEqual(complete(['gatewayctl', '--config', conf, 'status', '']), ['msul2', 'fsu3']);
      assert.deepEqual(complete(['gatewayctl', 'send', `--config=${conf}`, 'f']), ['fsu3']);
      assert.deepEqual(complete(['gatewayctl', '--config', conf, 'send', 'fsu3', '']), [], 'no peer for the REQUEST');
      assert.deepEqual(complete(['gatewayctl', '--config', conf, 'delayed', 'fsu3', '']), [], 'delayed takes one peer');
      assert.deepEqual(complete(['gatewayctl', '--config', path.join(dir, 'missing.conf'), 'retry', '']), [], 'no config, no ids, no error');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
