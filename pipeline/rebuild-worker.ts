/**
 * One worker thread of `migstat rebuild` (see rebuild.ts): the same ingest → deliver → month pieces as
 * `migstat month`, with the record-index lookups answered by the main thread, and `migstat year`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { loadConfig, type Loaded } from './config';
import { durability, settleWrites, sha256 } from './fsutil';
import type { StageEvent } from './log';
import { buildMonth, deliverExtract, ingestExtract, setIndexLine, writeDelivery, type FreshParts, type Ingested, type PriorEntry, type StageLog } from './month';
import type { Columns } from '../stages/ingest';
import type { FromWorker, ToWorker } from './rebuild';
import { idHash, indexEntries } from './record-index';
import { Store } from './store';
import { loadClassification, type Classification } from '../stages/territory';

const port = parentPort!;
const send = (m: FromWorker): void => port.postMessage(m);
const log: StageLog = { log: (e: StageEvent, level: 'info' | 'warn' | 'error' = 'info') => send({ type: 'log', e, level }) };

let store: Store, L: Loaded, C: Classification, settlements: string | undefined, population: string | undefined, allowOtherMonths = false;
/**
 * Test hook (test/rebuild.test.ts), inert unless set: a worker waits this long before it writes the files of a
 * delivery whose month it does not build, so that a later extract of the same month, delivered meanwhile, would
 * build the month without them if the main thread did not hold it back.
 */
const SLOW_WRITES_MS = Number(process.env.MIGSTAT_TEST_SLOW_WRITES_MS ?? 0);
/**
 * The extract being delivered, read by two functions made once (not per extract: V8 compiles a closure made afresh
 * on each call afresh too, and deliver calls these two for every form).
 */
const current = { prior: new Map<string, PriorEntry>(), fileMonth: '' };
const priorOf = (id: string): PriorEntry | undefined => current.prior.get(id);
/** as in the monthly cadence: when an extract arrives, every month before its own is closed */
const closed = (x: string): boolean => x < current.fileMonth;
let held: { k: number; fileMonth: string; ing: Ingested } | undefined;

// The loops over an extract's ids are functions of their own, not inside handle (which V8 would otherwise compile whole
// on the stack, again whenever a cold part of it met a new shape).
function idHashes(recordIds: readonly string[]): Int32Array<ArrayBuffer> {
  const ids = new Int32Array(recordIds.length);
  for (let i = 0; i < ids.length; i++) ids[i] = idHash(recordIds[i]!);
  return ids;
}

/**
 * The extract's record ids asked about as soon as ingest knows them (its formsKnown): the main thread's answer, queued
 * until the unit's handler returns, travels while ingest computes the content hashes (~18 ms), not after it (a round
 * trip of ~3 ms an extract, 1.4 s of waiting in a full rebuild).
 */
const asking = { k: 0, digest: '' };
function askPrior(forms: Columns, formsRead: number): void {
  const ids = idHashes(forms.record_id!);
  port.postMessage({ type: 'ingested', k: asking.k, digest: asking.digest, ids, forms: formsRead } satisfies FromWorker, [ids.buffer]);
}

/** the index lines of this extract's ids that the main thread found (a few hundred at most), read as loadPriorIndex reads its files */
function priorEntries(lines: string): Map<string, PriorEntry> {
  const prior = new Map<string, PriorEntry>();
  if (lines) for (const line of lines.split('\n')) setIndexLine(prior, line);
  return prior;
}

/** What handle has done, for the main thread: sent after the collection that follows it (below). */
type Done = Extract<FromWorker, { type: 'unit-done' | 'year-done' }>;

async function handle(m: ToWorker): Promise<Done | undefined> {
  switch (m.type) {
    case 'init':
      // the staging store is discarded on failure and synced once before it is moved into place (rebuild.ts)
      durability.fsyncEachFile = false;
      durability.renameEachFile = false;
      durability.deferLargeWrites = true;
      store = new Store(m.store);
      settlements = m.settlements;
      population = m.population;
      allowOtherMonths = m.allowOtherMonths === true;
      L = loadConfig();
      C = loadClassification(m.settlements);
      return;
    case 'unit': {
      const bytes = fs.readFileSync(m.file);
      const digest = sha256(bytes);
      asking.k = m.k;
      asking.digest = digest;
      held = { k: m.k, fileMonth: m.fileMonth, ing: ingestExtract({ bytes, name: path.basename(m.file), digest, input: m.file, fileMonth: m.fileMonth, encoding: m.encoding, log, formsKnown: askPrior }) };
      return;
    }
    case 'prior': {
      const h = held!;
      held = undefined;
      let events = 0;
      let fresh: FreshParts | undefined;
      if (!m.skip) {
        current.prior = priorEntries(m.prior);
        current.fileMonth = h.fileMonth;
        const d = deliverExtract(h.ing, { L, C, prior: priorOf, closed, allowOtherMonths, seq: m.seq, log });
        if (d.months.some((x) => x !== h.fileMonth && !closed(x))) throw new Error(`internal: ${h.ing.name} attributed forms to an open month other than its own`);
        // the index lines first: the next extract's delivery waits for them, not for the files written here
        const entries = indexEntries(d.idsText, d.rec.accepted);
        port.postMessage({ type: 'delivered', k: m.k, index: d.idsText, entries, delivery: d.rec.delivery } satisfies FromWorker, [entries.starts.buffer, entries.hashes.buffer]);
        if (SLOW_WRITES_MS > 0 && !m.build) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, SLOW_WRITES_MS);
        fresh = writeDelivery(store, d);
      }
      if (m.build) events = buildMonth(store, h.fileMonth, L, C, log, fresh).events;
      // its files complete before it counts as done: a year built next, on either worker, reads its tables
      await settleWrites();
      return { type: 'unit-done', k: m.k, events, built: m.build };
    }
    case 'year': {
      const { runYear } = await import('./year');
      const q = await runYear({ data: store.root, year: m.year, settlements, population, log, lockHeld: true, config: L });
      await settleWrites();
      return { type: 'year-done', year: m.year, events: q.events };
    }
  }
}

/**
 * A collection of the young generation between two units of work, when what the unit allocated is garbage
 * (rebuild.ts gives the workers a gc() function). Left to itself, V8 collected it in the middle of an extract,
 * mostly on external-memory pressure (the Buffers of the files being written), while the extract's ~20 000 forms
 * were alive: it copied them, promoted ~12 MB an extract to the old generation, and marked and compacted those
 * later. Collected here (~1.5 ms on an almost empty young generation), each extract starts on an empty young
 * generation that holds all it allocates, and little is promoted. Measured on 1991–2025, alternating runs (each
 * after dropping the page cache): 69.5 s on average against 72.8 s, 4–6 % less CPU. Not gc() without arguments:
 * that full, "precise" collection also throws away compiled code, and the rebuild took twice as long.
 */
const gc = (globalThis as { gc?: (o: { type: 'minor' }) => void }).gc;

// One message at a time, in order. A unit or a year is reported done after the collection that follows it, when the
// worker is really free: the main thread hands the next extract to whichever worker says so first. Reported before,
// the first worker, collecting a year's garbage (~30–40 ms), was given the next extract in the same moment as the
// other was given the one after, whose delivery then waited for it.
let chain = Promise.resolve();
port.on('message', (m: ToWorker) => {
  chain = chain
    .then(() => handle(m))
    .then((done) => {
      // after the handler has returned: its locals (the extract's columns) are garbage now
      if (gc && (m.type === 'prior' || m.type === 'year')) gc({ type: 'minor' });
      if (done) send(done);
    })
    .catch((e: Error) => send({ type: 'error', message: e.message }));
});
