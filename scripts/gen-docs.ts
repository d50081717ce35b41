/** Regenerates the configuration table in README.md from src/config/settings.ts. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withKeysTable } from '../src/docs/keys-table';

const readme = path.resolve(__dirname, '..', '..', 'README.md');
fs.writeFileSync(readme, withKeysTable(fs.readFileSync(readme, 'utf8')));
