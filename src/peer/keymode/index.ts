// The later key modes (PROTOCOL.md): what the daemon and a session import to choose and run them.
export { certificateDiagnostics, certificatesWanted, resolveKeyMode } from './resolve';
export { InboundRouter, RawChannel, localHandshake, sslHandshake } from './steps';
export { PeerNameCheck, TlsMaterial } from './ssl';
