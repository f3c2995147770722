/**
 * Building a large text (a year's 16 MB SDMX-ML, 12 MB SDMX-CSV) as UTF-8 bytes in one growing buffer. The
 * writers repeat a few thousand distinct fragments ~35 000 times; as strings, the millions of pieces and
 * their copies cost far more (mostly in the garbage collector) than copying each fragment's bytes.
 */
export class ByteWriter {
  private buf: Buffer;
  private n = 0;

  /** `capacity`: the expected size, to spare copies while growing */
  constructor(capacity = 1 << 16) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }

  /** bytes of a fragment prepared with `ByteWriter.encode` */
  bytes(b: Uint8Array): void {
    this.room(b.length);
    if (b.length > 32) this.buf.set(b, this.n);
    else for (let i = 0; i < b.length; i++) this.buf[this.n + i] = b[i]!; // (set() costs more for short ones)
    this.n += b.length;
  }

  text(s: string): void {
    this.bytes(Buffer.from(s, 'utf8'));
  }

  /** one ASCII character, by code */
  char(c: number): void {
    this.room(1);
    this.buf[this.n++] = c;
  }

  /** a number as String(v) writes it (digits directly for safe integers) */
  number(v: number): void {
    if (!Number.isSafeInteger(v)) { this.text(String(v)); return; } // (-0 writes 0, as String does)
    this.room(17);
    if (v < 0) { this.buf[this.n++] = 45; v = -v; } // '-'
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    for (let i = this.n + digits - 1; i >= this.n; i--) { this.buf[i] = 48 + (v % 10); v = Math.floor(v / 10); }
    this.n += digits;
  }

  /** the bytes written so far */
  result(): Buffer {
    return this.buf.subarray(0, this.n);
  }

  static encode(s: string): Buffer {
    return Buffer.from(s, 'utf8');
  }
}
