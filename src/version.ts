import * as fs from 'node:fs';
import * as path from 'node:path';

/** The version in package.json, which ships beside the compiled code (build/src → ../..). */
function readVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION = readVersion();
