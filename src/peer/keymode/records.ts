// TLS record framing (RFC 8446 §5.1, the same since SSL 3.0): a 5-byte header — content
// type, protocol version, 16-bit length — then that many bytes. Knowing where each record
// ends is what lets the ssl key mode hand OpenSSL only whole records and find the exact
// byte where the cleartext that follows the TLS part begins (PROTOCOL.md, later key modes).

const HEADER = 5;
/** Largest TLSCiphertext body any version allows (2^14 + 2048, TLS 1.2). */
const MAX_RECORD_BODY = 16384 + 2048;

/** change_cipher_spec (0x14), alert, handshake, application_data (0x17). */
export function isTlsRecordType(byte: number): boolean {
  return byte >= 0x14 && byte <= 0x17;
}

/**
 * Splits a byte stream into TLS records until, at a record boundary, a byte arrives that
 * cannot start a record: from there on everything is cleartext and is passed through.
 * A header with a record type but an impossible version or length also starts the
 * cleartext (at its first byte), so nothing is ever swallowed that was not a record.
 *
 * Records are handed to `onRecord` while it is set; when it is unset they are skipped
 * without being buffered (that is how records arriving after the key are dropped).
 */
export class RecordSplitter {
  onRecord: ((record: Buffer) => void) | undefined;
  private readonly header = Buffer.alloc(HEADER);
  private headerLen = 0;
  private bodyLeft = 0;
  private collecting = false;
  private parts: Buffer[] = [];
  private clear = false;
  private records = 0;

  /** True once the cleartext has started; from then on push() returns its input. */
  get inCleartext(): boolean {
    return this.clear;
  }

  /** Whole records seen so far (handed on or dropped). */
  get recordCount(): number {
    return this.records;
  }

  /** True when no record is half-read. */
  get atBoundary(): boolean {
    return this.headerLen === 0 && this.bodyLeft === 0;
  }

  /** Returns the cleartext part of `chunk` (possibly empty; shares memory with it). */
  push(chunk: Buffer): Buffer {
    if (this.clear) return chunk;
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, chunk.length - i);
        if (this.collecting) this.parts.push(chunk.subarray(i, i + n));
        this.bodyLeft -= n;
        i += n;
        if (this.bodyLeft === 0) this.endRecord();
        continue;
      }
      if (this.headerLen === 0 && !isTlsRecordType(chunk[i])) {
        this.clear = true;
        return chunk.subarray(i);
      }
      this.header[this.headerLen++] = chunk[i++];
      if (this.headerLen < HEADER) continue;
      const length = this.header.readUInt16BE(3);
      if (this.header[1] !== 0x03 || length > MAX_RECORD_BODY) {
        // Not a record after all: give back the header bytes as the start of the cleartext.
        this.clear = true;
        const start = Buffer.from(this.header);
        this.headerLen = 0;
        return Buffer.concat([start, chunk.subarray(i)]);
      }
      this.collecting = this.onRecord !== undefined;
      this.parts = this.collecting ? [Buffer.from(this.header)] : [];
      this.headerLen = 0;
      this.bodyLeft = length;
      if (length === 0) this.endRecord();
    }
    return chunk.subarray(chunk.length);
  }

  private endRecord(): void {
    this.records++;
    const parts = this.parts;
    this.parts = [];
    const collected = this.collecting;
    this.collecting = false;
    // onRecord may have been unset while the record was read (the key arrived): drop it.
    if (collected && this.onRecord) this.onRecord(Buffer.concat(parts));
  }
}
