/**
 * A per-message processing budget. A channel runs a message synchronously on the event loop,
 * so while it works every other connection waits; a message that would take longer than its
 * budget (a hostile repetition count, a runaway mapping) is stopped and answered as an error
 * instead of freezing the engine. Walks call spendBudget() once per item: cheap, the clock is
 * read only every BUDGET_CHECK_EVERY calls.
 */
export const DEFAULT_PROCESSING_BUDGET_MS = 1000;
const BUDGET_CHECK_EVERY = 64;

/** Thrown from inside a walk; runChannel turns it into an error result answered AE. */
export class ProcessingBudgetExceeded extends Error {
  constructor(readonly budgetMs: number) {
    super(`the message exceeded its processing budget of ${budgetMs} ms and was not processed`);
    this.name = 'ProcessingBudgetExceeded';
  }
}

let deadline = Number.POSITIVE_INFINITY;
let budgetMs = 0;
let calls = 0;

/** Runs fn with a budget of ms milliseconds of event-loop time; budgets do not nest, the inner one wins while it runs. */
export function withProcessingBudget<T>(ms: number, fn: () => T): T {
  const outer = { deadline, budgetMs };
  deadline = performance.now() + ms;
  budgetMs = ms;
  try {
    return fn();
  } finally {
    deadline = outer.deadline;
    budgetMs = outer.budgetMs;
  }
}

/** Counts one unit of work; throws ProcessingBudgetExceeded once the running message is over its budget. */
export function spendBudget(): void {
  if (++calls % BUDGET_CHECK_EVERY !== 0 || deadline === Number.POSITIVE_INFINITY) return;
  if (performance.now() > deadline) throw new ProcessingBudgetExceeded(budgetMs);
}
