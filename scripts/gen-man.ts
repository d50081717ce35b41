/** Regenerates man/gatewayctl.8 from the help texts in src/ctl/help.ts (test/ctl/help.test.ts fails until it is run). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderManPage } from '../src/ctl/man';

fs.writeFileSync(path.resolve(__dirname, '..', '..', 'man', 'gatewayctl.8'), renderManPage());
