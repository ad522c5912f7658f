/**
 * Collects the writes asked for in one turn of the event loop and commits them together: the
 * messages read from every connection in one turn share one round trip and one WAL flush. While
 * `concurrency` commits are in flight, new writes wait and go in the next, larger, batch. Every
 * caller's promise settles after the commit: all resolve, or (the commit failed) all reject.
 */
export class GroupCommit<T, R> {
  private pending: Array<{ item: T; resolve: (r: R) => void; reject: (e: Error) => void }> = [];
  private scheduled = false;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly commit: (items: T[]) => Promise<R[]>,
    private readonly options: { concurrency: number; maxBatch: number },
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the I/O callbacks of this turn: whatever else arrived in it joins the batch.
        setImmediate(() => {
          this.scheduled = false;
          this.next();
        });
      }
    });
  }

  /** Writes not yet committed (waiting or in flight). */
  get size(): number {
    return this.pending.length + this.inFlight;
  }

  /** Resolves once everything added so far is committed (or failed). */
  idle(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private next(): void {
    while (this.pending.length > 0 && this.inFlight < this.options.concurrency) {
      const batch = this.pending.splice(0, this.options.maxBatch);
      this.inFlight++;
      let settled: Promise<unknown>;
      try {
        settled = this.commit(batch.map((b) => b.item)).then(
          (results) => batch.forEach((b, i) => b.resolve(results[i]!)),
          (err: Error) => batch.forEach((b) => b.reject(err)),
        );
      } catch (err) {
        batch.forEach((b) => b.reject(err as Error));
        settled = Promise.resolve();
      }
      void settled.finally(() => {
        this.inFlight--;
        this.next();
        if (this.pending.length === 0 && this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }
}
