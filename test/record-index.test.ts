/**
 * The rebuild's in-memory record index (pipeline/record-index.ts) answers what the monthly cadence reads from its
 * state/ids files (loadPriorIndex): for any sequence of delivered index texts — re-sent ids, ids that collide in
 * the 32-bit hash, lines without a tab or with an empty id, months the window leaves behind — the lines it returns,
 * read by setIndexLine, give exactly loadPriorIndex's entries for the ids asked about.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { addMonths } from '../pipeline/contracts';
import { loadPriorIndex, setIndexLine, type PriorEntry } from '../pipeline/month';
import { idHash, indexEntries, RecordIndex } from '../pipeline/record-index';
import { Store } from '../pipeline/store';
import { collidingPair } from './helpers/colliding';
import { tmpDir } from './helpers/store';

describe('RecordIndex = loadPriorIndex', () => {
  const [c1, c2] = collidingPair();

  test('the colliding ids really collide (so the property below exercises the text comparison)', () => {
    expect(c1).not.toBe(c2);
    expect(idHash(c1)).toBe(idHash(c2));
  });

  test('for any deliveries, the lines found give the same entries as the files', () => {
    const id = fc.constantFrom('A', 'B', 'AB', 'B\u00e9', c1, c2, '', 'x y');
    const line = fc.oneof(
      { weight: 8, arbitrary: fc.tuple(id, fc.constantFrom('h1', 'h2', 'h3')) },
      { weight: 1, arbitrary: fc.constantFrom('no-tab-here', '\t2010-01\tempty-id', '') },
    );
    // a delivery: months ahead of the previous one (0: another extract of the same month), and its lines
    const delivery = fc.record({ step: fc.constantFrom(0, 1, 1, 1, 5, 13), lines: fc.array(line, { maxLength: 12 }), wanted: fc.array(id, { maxLength: 6 }) });
    let run = 0;
    fc.assert(
      fc.property(fc.array(delivery, { minLength: 1, maxLength: 20 }), (ds) => {
        const store = new Store(path.join(tmpDir(), `s${run++}`));
        const dir = store.p('state', 'ids');
        fs.mkdirSync(dir, { recursive: true });
        const index = new RecordIndex();
        let month = '2010-01';
        ds.forEach((d, k) => {
          month = addMonths(month, d.step);
          // ask first (as the rebuild does before the extract is delivered), then deliver
          const from = addMonths(month, -12);
          index.dropBefore(from);
          const found = new Map<string, PriorEntry>();
          const text = index.lookup(Int32Array.from(d.wanted, (x) => idHash(x)), from);
          if (text) for (const l of text.split('\n')) setIndexLine(found, l);
          const files = loadPriorIndex(store, month, 12, new Set(d.wanted));
          for (const w of d.wanted) expect([w, found.get(w)]).toEqual([w, files.get(w)]);
          const body = d.lines.map((l) => (typeof l === 'string' ? l : `${l[0]}\t${month}\t${l[1]}`)).join('\n');
          const idsText = `${body}\n`;
          fs.writeFileSync(path.join(dir, `${month}--${String(k + 1).padStart(4, '0')}-x.tsv`), idsText);
          // the entries as the rebuild's workers give them (the number of lines known, or a count too small: counted
          // again), or computed by add itself
          index.add(month, idsText, k % 3 === 0 ? undefined : indexEntries(idsText, k % 3 === 1 ? d.lines.length : 0));
        });
      }),
      { numRuns: 300, seed: 20261126 },
    );
  });

  test('memory stays flat: entries of months out of the window are dropped', () => {
    const index = new RecordIndex();
    let month = '1991-01';
    for (let k = 0; k < 60; k++) {
      month = addMonths(month, 1);
      index.dropBefore(addMonths(month, -12));
      index.add(month, Array.from({ length: 1000 }, (_, i) => `M${k}-${i}\t${month}\th\n`).join(''));
    }
    expect(index.size).toBe(13 * 1000); // the 12 months before the last one, and the last one
  });
});
