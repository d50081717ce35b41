// The config parser and the settings validation on random input: nothing but a
// ConfigError with a place ever comes out of them, values written in any legal way read
// back unchanged, and whatever they accept is within the documented bounds.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfResult, ConfSource, readConf } from '../../src/config/conf';
import { ConfigError } from '../../src/config/diag';
import { buildSettings, KEYS, MAX_DURATION_SECONDS } from '../../src/config/settings';
import { ASCII_PRINTABLE, CONTROLS, forAll, Gen, gen, Rng, UNICODE } from './gen';

function errno(code: string, p: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: no such thing, open '${p}'`), { code });
}

/** Files in memory; directories are implied by the paths. */
function memSource(files: Record<string, string>): ConfSource {
  const isDir = (p: string): boolean => Object.keys(files).some((f) => f.startsWith(`${p.replace(/\/+$/, '')}/`));
  return {
    readFile(p) {
      const text = files[p];
      if (text !== undefined) return text;
      throw errno(isDir(p) ? 'EISDIR' : 'ENOENT', p);
    },
    listDir(d) {
      if (!isDir(d)) throw errno('ENOENT', d);
      const prefix = `${d.replace(/\/+$/, '')}/`;
      return [...new Set(Object.keys(files).filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length).split('/')[0] as string))];
    },
  };
}

const FILES = ['/etc/g/main.conf', '/etc/g/a.conf', '/etc/g/conf.d/x.conf', '/etc/g/conf.d/y.conf'];
const KEY_NAMES = KEYS.map((k) => k.key);

/** Text built from the pieces a config is made of, glued in random, often broken, ways. */
const fragment: Gen<string> = (r, size) =>
  r.weighted<string>([
    [6, 'PerlSetVar '],
    [2, 'perlsetvar\t'],
    [2, 'Include '],
    [2, 'IncludeOptional '],
    [6, `${r.pick(KEY_NAMES)} `],
    [3, r.pick(['a.conf', 'conf.d/*.conf', '/etc/g/conf.d/?.conf', 'main.conf', '/nowhere/*', '/etc/*/x.conf', 'conf.d/'])],
    [4, r.pick(['"', '\\', '\\"', '\\\\', '#', ' ', '\t', '*', '?', '[', '(', '$', '\\\n'])],
    [4, r.pick(['\n', '\r\n', '\n\n', '\r'])],
    [3, String(r.pick([0, 1, -1, 5663, 65536, 0.5, 1e21, 2 ** 53]))],
    [3, gen.string([...ASCII_PRINTABLE, ...CONTROLS, ...UNICODE], 12)(r, size)],
    [1, '<VirtualHost *:80>\n'],
    [1, '\ufeff'],
  ]);
const textGen: Gen<string> = (r, size) => gen.array(fragment, 60)(r, size).join('');

function checkConfigError(err: unknown, files: readonly string[]): void {
  assert.ok(err instanceof ConfigError, `threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
  assert.ok(files.includes(err.diag.file) || err.diag.file.startsWith('/'), `error names a file: ${err.message}`);
  if (err.diag.line !== undefined) {
    assert.ok(Number.isInteger(err.diag.line) && err.diag.line >= 1);
    assert.ok(err.message.startsWith(`${err.diag.file}:${err.diag.line}: `), err.message);
  }
  assert.ok(!err.message.includes('\n'), 'one line');
}

test('readConf on random text and random include trees: a result or a ConfigError with file and line', () => {
  forAll('conf-random', (r, size) => Object.fromEntries(FILES.filter((_, i) => i === 0 || r.bool(0.6)).map((f) => [f, textGen(r, size)])), (files) => {
    let result: ConfResult;
    try {
      result = readConf(['/etc/g/main.conf'], memSource(files));
    } catch (err) {
      checkConfigError(err, FILES);
      return;
    }
    for (const [key, v] of result.values) {
      assert.ok(key.length > 0 && !/\s/.test(key), `key ${JSON.stringify(key)}`);
      assert.ok(result.files.includes(v.file));
      assert.ok(v.line >= 1);
    }
  }, { runs: 1500 });
});

/** How a value can be written: bare when the syntax allows it, else (or by choice) quoted. */
function writeValue(r: Rng, v: string): string {
  const bareOk = v !== '' && !v.startsWith('"') && !/^\s|\s$/.test(v) && !v.endsWith('\\');
  if (bareOk && r.bool(0.6)) return v;
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Characters a value may hold: anything that is not a line break. */
const VALUE_CHARS = [...ASCII_PRINTABLE, '\t', '\x01', '\x7f', ...UNICODE];

test('PerlSetVar values round-trip, however they are written and whatever surrounds them', () => {
  interface Doc { entries: [string, string][]; text: string; lines: Map<string, number> }
  const g: Gen<Doc> = (r, size) => {
    const entries: [string, string][] = gen.array<[string, string]>((rr, s) => [
      rr.bool(0.5) ? rr.pick(KEY_NAMES) : gen.string([...'abcXYZ09_.-:/'], 12, 1)(rr, s),
      gen.string(VALUE_CHARS, 30)(rr, s),
    ], 12)(r, size);
    const eol = r.pick(['\n', '\r\n']);
    const out: string[] = [];
    const lines = new Map<string, number>();
    if (r.bool(0.2)) out.push('\ufeff# config');
    for (const [k, v] of entries) {
      if (r.bool(0.3)) out.push(r.pick(['# comment "with quotes', '', '   ', 'ServerName example.org', '<Location />', 'PerlModule Apache::lonnet']));
      const sp = (): string => r.pick([' ', '  ', '\t', ' \t ']);
      out.push(`${r.bool(0.2) ? sp() : ''}${r.pick(['PerlSetVar', 'perlsetvar', 'PERLSETVAR'])}${sp()}${k}${sp()}${writeValue(r, v)}${r.bool(0.2) ? sp() : ''}`);
      lines.set(k, out.length);
    }
    return { entries, text: out.join(eol) + (r.bool(0.5) ? eol : ''), lines };
  };
  forAll('conf-roundtrip', g, ({ entries, text, lines }) => {
    const result = readConf(['/c.conf'], memSource({ '/c.conf': text }));
    const expected = new Map(entries);
    assert.deepEqual(new Map([...result.values].map(([k, v]) => [k, v.value])), expected);
    for (const [k, v] of result.values) assert.equal(v.line, lines.get(k), `line of ${k}`);
  }, { runs: 800, show: (d) => JSON.stringify(d.text) });
});

/** Values a setting might be given: numbers of every shape, words, paths, junk. */
const settingValue: Gen<string> = (r, size) =>
  r.weighted<string>([
    [5, String(r.int(0, 100))],
    [2, r.pick(['0', '-1', '+5', '1.5', '.5', '5.', '0.0001', '0.001', '1e3', '0x10', '00', '007', ' 5', '5 ', 'Infinity', 'NaN'])],
    [2, r.pick(['65535', '65536', '99999', String(MAX_DURATION_SECONDS), String(MAX_DURATION_SECONDS + 1), '9007199254740991', '9007199254740993', '9'.repeat(400)])],
    [3, r.pick(['yes', 'no', 'on', 'off', 'TRUE', 'False', 'auto', 'ssl', 'LOCAL', 'insecure', 'debug', 'warn', 'www-data', 'nobody$', '33'])],
    [3, r.pick(['/abs/path', 'rel/path', '../up', '.', 'file.pem', '/' + 'x'.repeat(200)])],
    [2, r.pick(['msul1', 'a/b', '..', 'x y', 'tab\tid', 'ctl\x01', 'é', 'z'.repeat(70)])],
    [2, gen.string([...ASCII_PRINTABLE, ...UNICODE, ...CONTROLS], 10)(r, size)],
  ]);

test('buildSettings on random values: a ConfigError naming the key and its line, or settings within bounds', () => {
  const g: Gen<Map<string, string>> = (r, size) => {
    const m = new Map<string, string>();
    if (r.bool(0.9)) m.set('lonHostID', r.bool(0.7) ? 'host1' : settingValue(r, size));
    for (const k of KEY_NAMES) if (r.bool(0.25)) m.set(k, settingValue(r, size));
    return m;
  };
  forAll('settings-random', g, (m) => {
    const keys = [...m.keys()];
    const conf: ConfResult = {
      values: new Map(keys.map((k, i) => [k, { value: m.get(k) as string, file: '/etc/g/main.conf', line: i + 1 }])),
      warnings: [],
      files: ['/etc/g/main.conf'],
    };
    let s: ReturnType<typeof buildSettings>["settings"];
    try {
      s = buildSettings(conf).settings;
    } catch (err) {
      checkConfigError(err, ['/etc/g/main.conf']);
      const e = err as ConfigError;
      const key = KEY_NAMES.find((k) => e.diag.message.startsWith(`${k} `));
      assert.ok(key, `the message names the key: ${e.message}`);
      if (m.has(key)) assert.equal(e.diag.line, keys.indexOf(key) + 1, 'the line of the bad value');
      return;
    }
    for (const spec of KEYS) {
      const v = s[spec.field];
      switch (spec.kind) {
        case 'duration':
          assert.ok(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 2 ** 31 - 1, `${spec.key} = ${String(v)}`);
          break;
        case 'count':
          assert.ok(Number.isSafeInteger(v) && (v as number) >= 1, `${spec.key} = ${String(v)}`);
          break;
        case 'port':
          assert.ok(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535, `${spec.key} = ${String(v)}`);
          break;
        case 'path':
        case 'certFile':
          assert.ok(typeof v === 'string' && path.isAbsolute(v), `${spec.key} = ${String(v)}`);
          break;
        case 'enum':
          assert.ok(spec.choices?.includes(v as string), `${spec.key} = ${String(v)}`);
          break;
        case 'bool':
          assert.equal(typeof v, 'boolean');
          break;
        case 'hostId':
          // eslint-disable-next-line no-control-regex
          assert.ok(typeof v === 'string' && v !== '' && !/[/\s\x00-\x1f\x7f]/.test(v) && v !== '..', `${spec.key} = ${JSON.stringify(v)}`);
          break;
        case 'group':
          assert.ok(v === undefined || /^(?:[A-Za-z_][A-Za-z0-9_.-]*\$?|\d+)$/.test(v as string));
          break;
      }
    }
    assert.ok(Buffer.byteLength(s.lonSockDir) + 2 <= 107 && Buffer.byteLength(s.controlSocket) <= 107, 'socket paths fit');
  }, { runs: 1500 });
});
