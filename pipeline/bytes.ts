/**
 * A large text built as UTF-8 bytes in one growing buffer: the month's CSV files (CsvWriter, pipeline/csv.ts) and a
 * year's 16 MB SDMX-ML and 12 MB SDMX-CSV (stages/sdmx). As strings, the millions of small pieces and their copies
 * cost far more (mostly in the garbage collector) than copying each piece's bytes once.
 */
export class ByteWriter {
  protected buf: Buffer;
  protected n = 0;

  /** `capacity`: the expected size, to spare copies while growing */
  constructor(capacity = 1 << 16) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** make room for k more bytes */
  protected room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(next, 0, 0, this.n);
    this.buf = next;
  }

  /** bytes as they are (e.g. a fragment prepared once with `ByteWriter.encode`) */
  raw(b: Uint8Array): void {
    this.room(b.length);
    if (b.length > 32) this.buf.set(b, this.n);
    else for (let i = 0; i < b.length; i++) this.buf[this.n + i] = b[i]!; // (set() costs more for short ones)
    this.n += b.length;
  }

  /** a string as UTF-8 */
  text(s: string): void {
    this.room(3 * s.length); // UTF-8: at most 3 bytes per UTF-16 unit
    this.n += this.buf.write(s, this.n, 'utf8');
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
