/** PEM texts: the network's CA, this host's certificate and its private key. */
export interface TlsMaterial {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
}
