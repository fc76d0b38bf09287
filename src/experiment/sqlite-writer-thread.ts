/**
 * The experiment store's writer thread: owns its own connection to the database file and writes the batches the
 * main thread posts, in order, so that neither SQLite's work nor a checkpoint's fsync ever runs on the gRPC
 * event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BatchWriter, openDatabase } from './sqlite-schema.js';
import type { FromWriter, ToWriter, WriterInit } from './sqlite-writer-protocol.js';

const init = workerData as WriterInit;
const port = parentPort!;
const db = openDatabase(init.file);
const writer = new BatchWriter(db, init.ledgerRetention);

port.on('message', (msg: ToWriter) => {
  if (msg.kind === 'close') {
    db.close();
    port.postMessage({ kind: 'closed', id: msg.id } satisfies FromWriter);
    port.close();
    return;
  }
  try {
    writer.run(msg.batch);
    port.postMessage({ kind: 'written', id: msg.id } satisfies FromWriter);
  } catch (err) {
    port.postMessage({ kind: 'failed', id: msg.id, message: (err as Error).message } satisfies FromWriter);
  }
});
