// The IDEA of the test side (the fake lond and the tests that play lond): OpenSSL's where
// this node's OpenSSL has it, the plain one of idea-plain.ts otherwise. Neither is
// gatewayc's own (src/crypto), so a bug there cannot make a test pass.
//
// OpenSSL keeps IDEA in its legacy provider (node --openssl-legacy-provider), and Debian
// builds OpenSSL without IDEA at all: on Debian's nodejs only the plain one is there.
// FAKE_LOND_IDEA=plain or =openssl forces one (the tests use it to run the fallback on
// every machine); anything else, or nothing, means "OpenSSL's if present".
import * as crypto from 'node:crypto';
import { ideaEcbPlain } from './idea-plain';

export type IdeaBackend = 'openssl' | 'plain';

export const NO_OPENSSL_IDEA =
  "this node's OpenSSL has no IDEA (idea-ecb): it needs --openssl-legacy-provider, and an OpenSSL built with IDEA (Debian's is not)";

export function opensslHasIdea(): boolean {
  return crypto.getCiphers().includes('idea-ecb');
}

export function opensslIdeaEcb(decrypt: boolean, key: Uint8Array, data: Uint8Array): Buffer {
  const c = decrypt ? crypto.createDecipheriv('idea-ecb', key, null) : crypto.createCipheriv('idea-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/** The backend to use: FAKE_LOND_IDEA if it names one, else OpenSSL's when this node has it. */
export function chooseIdeaBackend(env: NodeJS.ProcessEnv = process.env): IdeaBackend {
  const forced = env.FAKE_LOND_IDEA;
  if (forced === 'plain' || forced === 'openssl') return forced;
  return opensslHasIdea() ? 'openssl' : 'plain';
}

/** Throws when the backend cannot run here (OpenSSL's asked for where it is missing). */
export function checkIdeaBackend(backend: IdeaBackend): void {
  if (backend === 'openssl' && !opensslHasIdea()) throw new Error(`OpenSSL's IDEA was asked for, but ${NO_OPENSSL_IDEA}`);
}

/** IDEA-ECB over whole 8-byte blocks, no padding, with the given backend. */
export function ideaEcb(backend: IdeaBackend, decrypt: boolean, key: Uint8Array, data: Uint8Array): Buffer {
  return backend === 'openssl' ? opensslIdeaEcb(decrypt, key, data) : ideaEcbPlain(decrypt, key, data);
}

/** Words for logs and test output. */
export function describeIdeaBackend(backend: IdeaBackend): string {
  return backend === 'openssl' ? "OpenSSL's IDEA" : "the test side's plain IDEA (test/support/idea-plain.ts)";
}
