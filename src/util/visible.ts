/**
 * Text that came from elsewhere (a peer's answer, a spool file name, a config file) made
 * fit for a terminal or a one-line log record: every character a terminal would act on
 * (C0 controls, DEL, C1 controls, of which U+009B is a CSI on many terminals), and the
 * invisible ones that reorder or hide text (bidi controls, line and paragraph
 * separators), become a visible escape. What is left is one line that shows what it holds.
 */

// eslint-disable-next-line no-control-regex
const HIDDEN = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escape(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line, nothing a terminal obeys: `\n`, `\x1b`, `\x9b`, `\u202e` shown as such. */
export function visible(text: string): string {
  return text.replace(HIDDEN, escape);
}

/**
 * JSON for a terminal: JSON.stringify already escapes C0 controls; DEL, C1 and the bidi
 * controls it leaves raw get `\uXXXX` escapes, which every JSON parser reads back as the
 * same characters.
 */
export function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(HIDDEN_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** HIDDEN but C0: JSON.stringify escapes those in strings, and its indentation is made of them. */
const HIDDEN_IN_JSON = /[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** A copy of a JSON-like value with `visible` applied to every string in it. */
export function visibleStrings<T>(value: T): T {
  if (typeof value === 'string') return visible(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => visibleStrings(v)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, visibleStrings(v)])) as T;
  }
  return value;
}
