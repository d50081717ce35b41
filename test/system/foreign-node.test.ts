/**
 * The package on a machine whose /usr/bin/node is not the release's nodejs (issue 13): in a
 * booted Debian 12 and 13 with Debian's nodejs installed, the host's own node (a
 * third-party Node 20 build) is put at /usr/bin/node, as an administrator replacing
 * Debian's Node would. `apt install ./gatewayc_*.deb` must then say, in one sentence, which
 * Node the package was built for and which it found, and leave no service enabled,
 * started or failed. Putting Debian's node back and `dpkg --configure -a` finishes the
 * installation. On Debian 12 the module ABIs differ (108 against 115); on Debian 13 they
 * are the same (115), and what differs is that the foreign node does not link Debian's
 * libnode, which the addon needs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildDeb, Container, DEBIAN_NUMBER, Release, RELEASES, step, systemTestsUnavailable } from './harness';

const unavailable = systemTestsUnavailable();

/** The host's own node (`command -v node`): a Node 20 that is not Debian's. */
function hostNode(): { file: string; version: string; abi: string } {
  const found = execFileSync('sh', ['-c', 'command -v node'], { encoding: 'utf8' }).trim();
  const file = fs.realpathSync(found);
  const [version, abi] = execFileSync(file, ['-p', 'process.versions.node + " " + process.versions.modules'], { encoding: 'utf8' }).trim().split(' ');
  return { file, version: version as string, abi: abi as string };
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function releaseSuite(release: Release): void {
  const n = DEBIAN_NUMBER[release];
  const say = (what: string): void => step(`[${release}] ${what}`);
  let deb = '';
  let c: Container | undefined;
  const container = (): Container => c ?? assert.fail('no container');
  const sh = (script: string, allowFail = false) => container().exec(['sh', '-c', script], { allowFail, timeoutMs: 300_000 });
  const out = async (script: string): Promise<string> => (await sh(script, true)).stdout.trim();

  describe(`Debian ${n} (${release}) with a third-party node at /usr/bin/node`, { timeout: 30 * 60_000 }, () => {
    before(async () => {
      let t0 = Date.now();
      deb = await buildDeb(release);
      say(`scripts/build-deb ${release}: ${path.basename(deb)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      t0 = Date.now();
      c = await Container.boot(release, `gwnode${n}`);
      say(`booted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
    after(async () => {
      await c?.poweroff();
    });

    it('apt install says which Node the package is built for and which it found, and leaves no service behind; dpkg --configure -a finishes once Debian\'s node is back', async () => {
      const foreign = hostNode();
      const debian = (await out('node -p \'process.versions.node + " " + process.versions.modules\'')).split(' ');
      assert.equal(debian.length, 2, 'Debian\'s nodejs runs in the container');
      assert.notEqual(debian[0], foreign.version, 'the host\'s node is another Node than Debian\'s');
      await container().copyIn(foreign.file, '/srv/node-foreign');
      await sh('mv /usr/bin/node /usr/bin/node.debian && install -m 0755 /srv/node-foreign /usr/bin/node');
      assert.equal(await out('node -p process.versions.node'), foreign.version);
      say(`/usr/bin/node is now the host's Node ${foreign.version} (module ABI ${foreign.abi}); Debian's is ${debian[0]} (ABI ${debian[1]})`);

      const inside = `/srv/${path.basename(deb)}`;
      await container().copyIn(deb, inside);
      const install = await container().exec(['apt-get', 'install', '-y', '--no-install-recommends', inside], { allowFail: true, timeoutMs: 300_000 });
      const said = `${install.stdout}${install.stderr}`;
      assert.notEqual(install.code, 0, 'apt reports the failure');
      const sentences = said.split('\n').filter((l) => l.startsWith('gatewayc: '));
      assert.equal(sentences.length, 1, `one sentence from gatewayc:\n${said}`);
      const sentence = sentences[0] as string;
      const builtFor = new RegExp(`^gatewayc: built for the release's nodejs, Node\\.js ${esc(debian[0] as string)} \\(module ABI ${debian[1]}, libnode\\.so\\.${debian[1]}\\), `);
      assert.match(sentence, builtFor, 'names the Node it was built for: Debian\'s, its version and module ABI');
      assert.match(sentence, new RegExp(`but /usr/bin/node is Node\\.js ${esc(foreign.version)} \\(module ABI ${foreign.abi}, no libnode\\), which cannot load gatewayc's sd-notify addon; `), 'and the one it found');
      say(`apt install failed (exit ${install.code}) with: ${sentence}`);

      assert.equal(await out("dpkg-query -W -f='${db:Status-Abbrev}' gatewayc"), 'iF', 'unpacked, not configured');
      for (const unit of ['gatewayc.service', 'gatewayc-control.socket']) {
        assert.notEqual(await out(`systemctl is-enabled ${unit}`), 'enabled', `${unit} not enabled`);
        assert.equal(await out(`systemctl is-active ${unit}`), 'inactive', `${unit} not started`);
      }
      assert.equal(await out('systemctl list-units --failed --no-legend --plain'), '', 'no failed unit');
      // anchored, so that the shell running pgrep does not match itself
      assert.equal((await sh("pgrep -f '^/usr/bin/node /usr/lib/gatewayc/'", true)).code, 1, 'no gatewayc process');
      assert.equal(await out('ls -A /run/gatewayc 2>/dev/null'), '', 'no socket made');
      say('gatewayc is unpacked but not configured: no unit enabled, started or failed, no process, no socket');

      // The remedy the sentence gives, without the download: Debian's node back, then configure.
      await sh('mv /usr/bin/node.debian /usr/bin/node');
      await sh('dpkg --configure -a');
      assert.equal(await out("dpkg-query -W -f='${db:Status-Abbrev}' gatewayc"), 'ii');
      assert.equal(await out('systemctl is-active gatewayc'), 'active');
      assert.equal(await out('systemctl is-enabled gatewayc'), 'enabled');
      assert.match(await out('gatewayctl status'), /hosts\.tab/, 'the daemon answers (no peers yet)');
      say('with Debian\'s node back, dpkg --configure -a configured gatewayc and started it');
    });
  });
}

describe('the package on a machine whose /usr/bin/node is not the release\'s nodejs', { skip: unavailable ?? false, concurrency: process.env.GATEWAYC_SYSTEM_SERIAL ? 1 : true }, () => {
  for (const release of RELEASES) releaseSuite(release);
});
