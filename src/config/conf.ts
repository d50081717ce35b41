/**
 * LON-CAPA's Apache-style config files (`PerlSetVar key value`, `Include`), parsed with
 * the file system injected so every rule can be tested in memory. Only PerlSetVar and
 * the include directives mean anything here; an existing loncapa.conf is full of other
 * Apache directives, which are ignored so that it can be included as it is.
 */
import * as path from 'node:path';
import { ConfigError, Diag, errnoReason } from './diag';

/** Both methods throw a NodeJS.ErrnoException (with `code`) on failure. */
export interface ConfSource {
  readFile(path: string): string;
  /** Entry names (not paths) of a directory. */
  listDir(dir: string): string[];
}

export interface ConfValue { value: string; file: string; line: number }

export interface ConfResult {
  values: Map<string, ConfValue>;
  warnings: Diag[];
  /** Every file read, in the order read. */
  files: string[];
}

/** Apache's own limit on Include nesting, which also stops runaway wildcard includes. */
export const MAX_INCLUDE_DEPTH = 16;

export function readConf(files: string[], src: ConfSource): ConfResult {
  const result: ConfResult = { values: new Map(), warnings: [], files: [] };
  for (const file of files) {
    let text: string;
    try {
      text = src.readFile(file);
    } catch (err) {
      throw new ConfigError({ file, message: `cannot read ${file}: ${errnoReason(err)}` });
    }
    result.files.push(file);
    parseFile(file, text, [path.resolve(file)], src, result);
  }
  return result;
}

interface LogicalLine { text: string; line: number }

/** Physical lines joined at Apache's trailing-backslash continuations; `line` is where each starts. */
export function logicalLines(text: string): LogicalLine[] {
  const out: LogicalLine[] = [];
  let pending: string | undefined;
  let start = 0;
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((raw, i) => {
    if (pending === undefined) {
      pending = '';
      start = i + 1;
    }
    // trimEnd, not /\s+$/: that regex costs quadratic time on a long run of blanks.
    const trimmed = raw.trimEnd();
    if (trimmed.endsWith('\\')) {
      pending += trimmed.slice(0, -1);
      return;
    }
    out.push({ text: pending + raw, line: start });
    pending = undefined;
  });
  if (pending !== undefined) out.push({ text: pending, line: start });
  return out;
}

/**
 * Apache's double-quoted argument: `\"` and `\\` are escapes, any other backslash is
 * kept. Returns the error message instead of throwing so the caller can add file:line.
 */
export function unquote(v: string): { value: string } | { error: string } {
  if (!v.startsWith('"')) return { value: v };
  let out = '';
  for (let i = 1; i < v.length; i++) {
    const ch = v[i];
    if (ch === '\\' && (v[i + 1] === '"' || v[i + 1] === '\\')) {
      out += v[i + 1];
      i++;
    } else if (ch === '"') {
      if (i !== v.length - 1) return { error: `unexpected text after the closing quote: ${v}` };
      return { value: out };
    } else {
      out += ch;
    }
  }
  return { error: `missing closing quote: ${v}` };
}

/**
 * The first word of a line and the rest, both without surrounding white space (JS's
 * \s: a value may hold U+2028/U+2029 or a lone CR, which stay inside the rest); undefined
 * for a blank line. Plain scans, no backtracking regex: config text is parsed on the
 * event loop, and /^\s*(\S+)\s*(.*?)\s*$/ cost quadratic time on a long run of blanks.
 */
export function firstWord(text: string): [string, string] | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const end = t.search(/\s/);
  return end < 0 ? [t, ''] : [t.slice(0, end), t.slice(end).trimStart()];
}

function parseFile(file: string, text: string, stack: string[], src: ConfSource, result: ConfResult): void {
  for (const { text: lineText, line } of logicalLines(text)) {
    const words = firstWord(lineText);
    if (!words || words[0].startsWith('#')) continue;
    const directive = words[0].toLowerCase();
    const rest = words[1];
    const error = (message: string): ConfigError => new ConfigError({ file, line, message });
    if (directive === 'perlsetvar') {
      const kv = firstWord(rest);
      if (!kv) throw error('PerlSetVar needs a key and a value');
      const [key, raw] = kv;
      if (raw === '') throw error(`PerlSetVar ${key} has no value`);
      const u = unquote(raw);
      if ('error' in u) throw error(`PerlSetVar ${key}: ${u.error}`);
      result.values.set(key, { value: u.value, file, line });
    } else if (directive === 'include' || directive === 'includeoptional') {
      const name = directive === 'include' ? 'Include' : 'IncludeOptional';
      const u = unquote(rest);
      if ('error' in u) throw error(`${name}: ${u.error}`);
      if (u.value === '') throw error(`${name} needs a path`);
      include({ file, line, name, optional: name === 'IncludeOptional' }, u.value, stack, src, result);
    }
    // Every other directive belongs to Apache (or mod_perl) and is none of our business.
  }
}

interface IncludeSite { file: string; line: number; name: string; optional: boolean }

function siteError(site: IncludeSite, message: string): ConfigError {
  return new ConfigError({ file: site.file, line: site.line, message });
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

const hasWildcard = (s: string): boolean => /[*?]/.test(s);

/**
 * `*` and `?` never match `/`, and, as in Apache (APR_FNM_PERIOD), never a leading dot.
 * Matched by the greedy scan with one backtrack point (the last star), which costs at most
 * name × pattern steps: a regex of many `[^/]*` backtracks exponentially in the stars.
 */
export function wildcardMatcher(pattern: string): (name: string) => boolean {
  return (name) => globMatch(pattern, name) && (!name.startsWith('.') || pattern.startsWith('.'));
}

function globMatch(p: string, s: string): boolean {
  let pi = 0;
  let si = 0;
  let star = -1;
  let resume = 0;
  while (si < s.length) {
    const pc = p[pi];
    if (pc === '*') {
      star = pi++;
      resume = si;
    } else if (pc !== undefined && (pc === '?' ? s[si] !== '/' : pc === s[si])) {
      pi++;
      si++;
    } else if (star >= 0 && s[resume] !== '/') {
      // The last star takes one more character; earlier stars never need to (any split
      // an earlier star could make, the last one can make too), except across a '/',
      // which no star crosses: then nothing matches.
      pi = star + 1;
      si = ++resume;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

function include(site: IncludeSite, target: string, stack: string[], src: ConfSource, result: ConfResult): void {
  const full = path.isAbsolute(target) ? target : path.join(path.dirname(site.file), target);
  const dir = path.dirname(full);
  const base = path.basename(full);
  if (hasWildcard(dir)) throw siteError(site, `${site.name} ${target}: wildcards are only supported in the last path component`);
  if (!hasWildcard(base)) {
    includeFile(site, full, false, stack, src, result);
    return;
  }
  let names: string[];
  try {
    names = src.listDir(dir);
  } catch (err) {
    if (site.optional && isMissing(err)) return;
    throw siteError(site, `cannot include ${full}: cannot list ${dir}: ${errnoReason(err)}`);
  }
  const matches = wildcardMatcher(base);
  // Byte order, as Apache sorts, so the include order does not depend on the locale.
  const picked = names.filter(matches).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of picked) includeFile(site, path.join(dir, name), true, stack, src, result);
}

function includeFile(site: IncludeSite, file: string, fromWildcard: boolean, stack: string[], src: ConfSource, result: ConfResult): void {
  const id = path.resolve(file);
  if (stack.includes(id)) {
    throw siteError(site, `include cycle: ${[...stack.slice(stack.indexOf(id)), id].join(' -> ')}`);
  }
  if (stack.length > MAX_INCLUDE_DEPTH) throw siteError(site, `includes nested more than ${MAX_INCLUDE_DEPTH} deep (at ${file})`);
  let text: string;
  try {
    text = src.readFile(file);
  } catch (err) {
    if (site.optional && isMissing(err)) return;
    // A wildcard can match a subdirectory (conf.d/*); Apache would recurse, we skip it.
    if (fromWildcard && (err as NodeJS.ErrnoException).code === 'EISDIR') return;
    throw siteError(site, `cannot include ${file}: ${errnoReason(err)}`);
  }
  result.files.push(file);
  parseFile(file, text, [...stack, id], src, result);
}
