/**
 * The rebuild's in-memory record index (pipeline/rebuild.ts): the record-index lines of the last 12 months, as the
 * monthly cadence reads them from state/ids/*.tsv (loadPriorIndex in pipeline/month.ts), answering "which lines
 * name these record ids?" for one extract after another, on the rebuild's ordered path.
 *
 * The lines stay inside the index texts the workers delivered (one string per extract); an entry is four integers
 * in typed arrays — the hash of its record id, its text, its line, the next entry of its hash bucket — so neither
 * the ~21 000 lines of an extract nor their ids become strings or Map entries (the main thread used to spend ~40 ms
 * an extract on those). Ids are compared as text only when their hashes are equal: a re-sent record or a collision.
 *
 * Exactness. The workers send the hash of each record id they ask about (`idHash`); the index returns every line in
 * the window whose id has that hash — every version of the id, oldest first, as loadPriorIndex reads them from its
 * files. A collision only adds lines of other ids: the worker reads the lines into a Map by their own id
 * (setIndexLine) and asks it for exact ids, so what it finds is exactly what loadPriorIndex would have given it.
 */

/** FNV-1a over the UTF-16 code units of s[a, b): the hash of a record id, the same in the workers and here. */
export function idHash(s: string, a = 0, b = s.length): number {
  let h = 0x811c9dc5;
  for (let i = a; i < b; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** The entries of an index text: for each line that is one, the offset where it starts and the idHash of its id. */
export interface IndexEntries { starts: Int32Array<ArrayBuffer>; hashes: Int32Array<ArrayBuffer> }

/**
 * The entries of an index text (lines "id TAB month TAB hash", each ending in \n), read as loadPriorIndex reads its
 * file: a line is an entry when it has a tab after a non-empty id. `lines`: how many lines the text has, when the
 * caller knows (else they are counted first; and again if it has more, e.g. an id with a line end in it).
 */
export function indexEntries(text: string, lines?: number): IndexEntries {
  let cap = lines ?? 0;
  if (lines === undefined) for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) cap++;
  cap++; // (a last line without its line end)
  const starts = new Int32Array(cap), hashes = new Int32Array(cap);
  const n = fillEntries(text, starts, hashes);
  if (n < 0) return indexEntries(text);
  return { starts: starts.slice(0, n), hashes: hashes.slice(0, n) };
}

/** indexEntries' loop, alone in a function that returns its count, -1 when the arrays are too short (see LOOP_TAIL in pipeline/memo.ts) */
function fillEntries(text: string, starts: Int32Array, hashes: Int32Array): number {
  let n = 0;
  for (let a = 0; a < text.length; ) {
    let b = text.indexOf('\n', a);
    if (b < 0) b = text.length;
    const tab = text.indexOf('\t', a);
    if (tab > a && tab < b) {
      if (n === starts.length) return -1;
      starts[n] = a;
      hashes[n++] = idHash(text, a, tab);
    }
    a = b + 1;
  }
  return n;
}

/** A delivered text: starts[k] is where its k-th entry's line starts, entries[k] that entry's number in the table. */
interface Text { fileMonth: string; text: string; starts: Int32Array; entries: Int32Array }

const BUCKET_BITS = 20; // 1 M buckets for ~260 000–400 000 entries (12–13 months): chains of one, mostly

export class RecordIndex {
  private readonly head = new Int32Array(1 << BUCKET_BITS).fill(-1);
  // entry e, one per line: hash[e], text[e] (a slot of `texts`), line[e] (its line number in that text), next[e]
  // (bucket chain, newest first: lines are put at the head as they are delivered; or the free list)
  private hash = new Int32Array(1 << 16);
  private text = new Int32Array(1 << 16);
  private line = new Int32Array(1 << 16);
  private next = new Int32Array(1 << 16);
  private used = 0;
  private free = -1;
  private readonly texts: (Text | undefined)[] = [];
  private readonly freeTexts: number[] = [];
  private readonly window: number[] = []; // the slots of the texts held, in delivery (= month) order

  /** Forget the texts of extracts of months before `from` (the window moves on: memory stays flat over 35 years). */
  dropBefore(from: string): void {
    while (this.window.length && this.texts[this.window[0]!]!.fileMonth < from) {
      const s = this.window.shift()!;
      const t = this.texts[s]!;
      for (let k = 0; k < t.entries.length; k++) this.remove(t.entries[k]!);
      this.texts[s] = undefined;
      this.freeTexts.push(s);
    }
  }

  /**
   * The lines (without their line end, joined with \n) of the ids with these hashes, in texts of months from `from`
   * on: for each distinct hash, its lines oldest first (the order of delivery, as the files are read).
   */
  lookup(hashes: Int32Array, from: string): string {
    const out: string[] = [];
    const mask = (1 << BUCKET_BITS) - 1;
    // an id asked twice (a form re-sent within the extract) is answered once; only the few ids the index knows
    // need the check (a Set of all ~21 000 hashes would cost ~2.5 ms on the rebuild's ordered path)
    const answered = new Set<number>();
    for (let j = 0; j < hashes.length; j++) {
      const h = hashes[j]!;
      const at = out.length;
      for (let e = this.head[h & mask]!; e >= 0; e = this.next[e]!) {
        if (this.hash[e] !== h) continue;
        const t = this.texts[this.text[e]!]!;
        if (t.fileMonth < from) continue;
        const a = t.starts[this.line[e]!]!;
        const b = t.text.indexOf('\n', a);
        out.push(t.text.slice(a, b < 0 ? t.text.length : b));
      }
      if (out.length === at) continue;
      if (answered.has(h)) { out.length = at; continue; }
      answered.add(h);
      if (out.length - at > 1) reverseFrom(out, at); // (the chain is newest first)
    }
    return out.join('\n');
  }

  /**
   * Add the record-index text an extract of `fileMonth` delivered (lines "id TAB month TAB hash", each ending in \n),
   * with its entries as indexEntries(text) gives them: the worker that delivered it computes them, off this thread
   * (here they cost ~2.5–5 ms an extract on the rebuild's ordered path, and the main thread shares its two cores).
   */
  add(fileMonth: string, text: string, e: IndexEntries = indexEntries(text)): void {
    const s = this.freeTexts.pop() ?? this.texts.length;
    const n = e.hashes.length;
    const t: Text = { fileMonth, text, starts: e.starts, entries: new Int32Array(n) };
    this.texts[s] = t;
    for (let k = 0; k < n; k++) t.entries[k] = this.put(e.hashes[k]!, s, k);
    this.window.push(s);
  }

  /** A new entry for line k of slot s, whose id has hash h, at the head of its bucket. */
  private put(h: number, s: number, k: number): number {
    const bucket = h & ((1 << BUCKET_BITS) - 1);
    let e = this.free;
    if (e >= 0) this.free = this.next[e]!;
    else {
      if (this.used === this.hash.length) this.grow();
      e = this.used++;
    }
    this.hash[e] = h; this.text[e] = s; this.line[e] = k;
    this.next[e] = this.head[bucket]!;
    this.head[bucket] = e;
    return e;
  }

  private remove(e: number): void {
    const bucket = this.hash[e]! & ((1 << BUCKET_BITS) - 1);
    let p = -1;
    for (let x = this.head[bucket]!; x !== e; x = this.next[x]!) p = x;
    if (p < 0) this.head[bucket] = this.next[e]!; else this.next[p] = this.next[e]!;
    this.next[e] = this.free;
    this.free = e;
  }

  private grow(): void {
    const g = (a: Int32Array): Int32Array<ArrayBuffer> => { const b = new Int32Array(a.length * 2); b.set(a); return b; };
    this.hash = g(this.hash); this.text = g(this.text); this.line = g(this.line); this.next = g(this.next);
  }

  /** Entries held (for the tests). */
  get size(): number {
    let n = 0;
    for (const s of this.window) n += this.texts[s]!.entries.length;
    return n;
  }
}

/** Reverse a[from…] in place. */
function reverseFrom(a: string[], from: number): void {
  for (let i = from, j = a.length - 1; i < j; i++, j--) { const x = a[i]!; a[i] = a[j]!; a[j] = x; }
}
