// The later key modes (PROTOCOL.md): what a session imports to choose and run them.
export { chooseKeyMode, isLocalAddress, KeyMode, KeyModeContext, KeyModeSetting } from './select';
export { InboundRouter, LocalHandshakeOptions, RawChannel, RawHandlers, RawPhase, SslHandshakeOptions, localHandshake, sslHandshake } from './steps';
export { SslExchangeError, SslExchangeOptions, SslExchangeResult, SslKeyExchange, TlsMaterial, TlsTail } from './ssl';
export { LocalKeyFile, createLocalKeyFile } from './local';
