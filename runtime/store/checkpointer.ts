import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * What the checkpointing thread runs (CommonJS, evaluated: no file of its own, so it works the
 * same from the built package and from the sources under test). Every `intervalMs` it copies
 * what the WAL holds into the database file (a PASSIVE checkpoint: it never waits for readers or
 * writers, and is tried again next time when it could not finish).
 */
const CHECKPOINTER = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 0');
db.pragma('wal_autocheckpoint = 0');
setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy or failing: the next interval tries again; the WAL only grows meanwhile.
  }
}, workerData.intervalMs);
`;

/**
 * Checkpoints a SQLite store in a thread of its own. A checkpoint copies pages and syncs two
 * files: on the event loop (SQLite's automatic checkpoint runs inside a commit) it held every
 * ACK for its duration, each few thousand messages. The writer's connections turn their
 * automatic checkpoints off while this runs.
 */
export class Checkpointer {
  private readonly worker: Worker;

  constructor(path: string, intervalMs = 1000) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(CHECKPOINTER, { eval: true, workerData: { driver, path, intervalMs } });
    // It never keeps the process alive, and an error in it leaves the WAL to grow, nothing worse.
    this.worker.unref();
    this.worker.on('error', () => undefined);
  }

  stop(): Promise<number> {
    return this.worker.terminate();
  }
}
