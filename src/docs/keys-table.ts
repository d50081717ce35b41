import { KEYS } from '../config/settings';

const KEYS_START = '<!-- keys:start (generated from src/config/settings.ts by scripts/gen-docs) -->';
const KEYS_END = '<!-- keys:end -->';

/** The configuration reference as a Markdown table, from the one table of keys the parser uses. */
function keysMarkdown(): string {
  const rows = KEYS.map((k) => `| \`${k.key}\` | ${k.default === undefined ? '(unset)' : `\`${k.default}\``} | ${k.doc.replace(/\|/g, '\\|')} |`);
  return ['| key | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** Replaces the generated block of a document; throws if the markers are missing. */
export function withKeysTable(doc: string): string {
  const a = doc.indexOf(KEYS_START);
  const b = doc.indexOf(KEYS_END);
  if (a < 0 || b < a) throw new Error('keys table markers not found');
  return `${doc.slice(0, a + KEYS_START.length)}\n${keysMarkdown()}\n${doc.slice(b)}`;
}
