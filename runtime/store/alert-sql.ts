import type { Dialect } from './operator-sql.js';

/**
 * What the alert rules judge that no counter holds, kept in the store so that the node sending
 * the notices sees what every node saw: per queue, how its delivery attempts went (a destination
 * failing), and per node, how its last spec reload went. Both stores use this SQL; PostgreSQL
 * creates the tables in schema version 6, SQLite when the store is opened.
 */

/**
 * Per queue and writer slot (PostgreSQL: the connection's backend pid modulo 64, as the count
 * tables; SQLite: 0): the last successful attempt, and the first failed attempt after the last
 * success seen anywhere, with how many failed since. Nodes write their own slots, so attempt
 * outcomes never wait on another node's commit; a reader combines the slots.
 */
export function queueAttemptsTableSql(dialect: Dialect): string {
  const [time, ifMissing] = dialect === 'sqlite' ? ['INTEGER', 'IF NOT EXISTS '] : ['BIGINT', ''];
  return `
CREATE TABLE ${ifMissing}queue_attempts (
  channel TEXT NOT NULL,
  destination TEXT NOT NULL,
  slot INTEGER NOT NULL,
  last_ok_at ${time} NOT NULL,
  failing_since ${time},
  failures INTEGER NOT NULL,
  PRIMARY KEY (channel, destination, slot)
);
`;
}

/** A node's last spec reload: applied, or rejected with a summary (where and which code: no spec text). */
export function nodeReloadsTableSql(dialect: Dialect): string {
  const [time, ifMissing] = dialect === 'sqlite' ? ['INTEGER', 'IF NOT EXISTS '] : ['BIGINT', ''];
  return `
CREATE TABLE ${ifMissing}node_reloads (
  node TEXT PRIMARY KEY,
  at ${time} NOT NULL,
  outcome TEXT NOT NULL,
  summary TEXT
);
`;
}

/** The latest success of a queue in any slot. */
const lastOk = (channel: string, destination: string) =>
  `(SELECT COALESCE(MAX(o.last_ok_at), 0) FROM queue_attempts o WHERE o.channel = ${channel} AND o.destination = ${destination})`;

/**
 * Adds attempt outcomes to their slot rows. `source` yields rows (channel, destination, slot,
 * ok_at, fail_since, fails): a batch's latest success (0: none), its first failure after that
 * and how many. A failure older than a success seen in any slot (written late, by a node whose
 * commit lagged) does not make the queue failing, and a slot's failures from before the latest
 * success anywhere are dropped when it is written again. Successes are written only while some
 * slot of the queue has a failure open: with every attempt working, nothing is written (it
 * doubled the cost of recording attempts). The price: a failure that ended before a success
 * but is written after it, while nothing else failed, shows until the queue's next success.
 * Rows are written in key order, so two nodes' batches never wait on each other in a cycle.
 */
export function recordAttemptsSql(dialect: Dialect, source: string): string {
  const [greatest, least] = dialect === 'sqlite' ? ['max', 'min'] : ['GREATEST', 'LEAST'];
  const seen = `${greatest}(queue_attempts.last_ok_at, excluded.last_ok_at, ${lastOk('excluded.channel', 'excluded.destination')})`;
  const oldStays = `queue_attempts.failing_since > ${seen}`;
  const newCounts = `excluded.failing_since > ${seen}`;
  return `INSERT INTO queue_attempts (channel, destination, slot, last_ok_at, failing_since, failures)
SELECT s.channel, s.destination, s.slot, s.ok_at,
  CASE WHEN s.fail_since > ${lastOk('s.channel', 's.destination')} THEN s.fail_since END,
  CASE WHEN s.fail_since > ${lastOk('s.channel', 's.destination')} THEN s.fails ELSE 0 END
FROM (${source}) s
WHERE s.fail_since IS NOT NULL OR EXISTS (SELECT 1 FROM queue_attempts o WHERE o.channel = s.channel AND o.destination = s.destination AND o.failing_since IS NOT NULL)
ORDER BY s.channel, s.destination
ON CONFLICT (channel, destination, slot) DO UPDATE SET
  last_ok_at = ${greatest}(queue_attempts.last_ok_at, excluded.last_ok_at),
  failing_since = CASE
    WHEN ${oldStays} AND ${newCounts} THEN ${least}(queue_attempts.failing_since, excluded.failing_since)
    WHEN ${oldStays} THEN queue_attempts.failing_since
    WHEN ${newCounts} THEN excluded.failing_since
  END,
  failures = CASE WHEN ${oldStays} THEN queue_attempts.failures ELSE 0 END + CASE WHEN ${newCounts} THEN excluded.failures ELSE 0 END`;
}

/** Queues whose every attempt since their first failure failed: since when, and how many (a few rows per queue, no scan of deliveries). */
export const FAILING_QUEUES_SQL = `
SELECT a.channel, a.destination, MIN(a.failing_since) AS since, CAST(SUM(a.failures) AS INTEGER) AS failures
FROM queue_attempts a
WHERE a.failing_since > (SELECT MAX(o.last_ok_at) FROM queue_attempts o WHERE o.channel = a.channel AND o.destination = a.destination)
GROUP BY a.channel, a.destination ORDER BY a.channel, a.destination`;

/** Values: node, at, outcome, summary. */
export function recordReloadSql(dialect: Dialect): string {
  const p = dialect === 'sqlite' ? ['?', '?', '?', '?'] : ['$1', '$2', '$3', '$4'];
  return `INSERT INTO node_reloads (node, at, outcome, summary) VALUES (${p.join(', ')})
ON CONFLICT (node) DO UPDATE SET at = excluded.at, outcome = excluded.outcome, summary = excluded.summary`;
}
