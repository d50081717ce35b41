// The later key modes (PROTOCOL.md): what a session imports to choose and run them.
export { CertificateDiag, certificateDiagnostics, certificatesWanted, isLocalAddress, KeyMode, KeyModePeer, KeyModeSettings, resolveKeyMode } from './resolve';
export { InboundRouter, LocalHandshakeOptions, RawChannel, RawHandlers, RawPhase, SslHandshakeOptions, localHandshake, sslHandshake } from './steps';
export { PeerNameCheck, SslExchangeError, SslExchangeOptions, SslExchangeResult, SslKeyExchange, TlsMaterial, TlsTail } from './ssl';
export { LocalKeyFile, createLocalKeyFile } from './local';
