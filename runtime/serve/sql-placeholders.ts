/**
 * The `$1`, `$2` … placeholders of a database destination's statement. Specs write them the same
 * way for every database; PostgreSQL takes them as they are, and MySQL/MariaDB is sent `?` in
 * their place with the values put in the order the `?` appear (so `$2 … $1` and a `$1` used twice
 * work there too). Text in quotes and comments is not SQL to bind, so it is skipped the way the
 * database itself reads it.
 */

export type SqlDialect = 'postgres' | 'mysql';

/** The dialect a database URL's scheme names, or undefined for a scheme hl7c does not write to. */
export function sqlDialect(url: string): SqlDialect | undefined {
  if (/^postgres(ql)?:\/\//i.test(url)) return 'postgres';
  if (/^(mysql|mariadb):\/\//i.test(url)) return 'mysql';
  return undefined;
}

export interface SqlScan {
  /** Each `$n` outside quotes and comments: its number and where it starts in the statement. */
  placeholders: Array<{ number: number; index: number; length: number }>;
  /** Where a bare `?` stands outside quotes and comments (MySQL would bind it; hl7c does not). */
  questionMarks: number[];
}

/** Finds the placeholders of one statement as the dialect's parser would see them. */
export function scanStatement(sql: string, dialect: SqlDialect): SqlScan {
  const out: SqlScan = { placeholders: [], questionMarks: [] };
  const mysql = dialect === 'mysql';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === "'" || c === '"' || (c === '`' && mysql)) {
      // MySQL reads a backslash in quotes as an escape; PostgreSQL only in E'…' strings.
      const escapeString = c === "'" && /[eE]/.test(sql[i - 1] ?? '') && !/[A-Za-z0-9_$]/.test(sql[i - 2] ?? '');
      i = endOfQuoted(sql, i, c, mysql || escapeString ? '\\' : undefined);
    } else if ((c === '-' && next === '-') || (c === '#' && mysql)) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === '$') {
      const number = /^\$(\d+)/.exec(sql.slice(i));
      const tag = dialect === 'postgres' ? /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i)) : null;
      if (number && !/[A-Za-z0-9_$]/.test(sql[i - 1] ?? '')) {
        out.placeholders.push({ number: Number(number[1]), index: i, length: number[0].length });
        i += number[0].length;
      } else if (tag && !/[A-Za-z0-9_$]/.test(sql[i - 1] ?? '')) {
        // A PostgreSQL dollar-quoted string: $$ … $$ or $tag$ … $tag$.
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end < 0 ? sql.length : end + tag[0].length;
      } else i++;
    } else {
      if (c === '?' && mysql) out.questionMarks.push(i);
      i++;
    }
  }
  return out;
}

/** Where a quoted run that opens at `start` ends: a doubled quote or an escaped one stays inside. */
function endOfQuoted(sql: string, start: number, quote: string, escape: string | undefined): number {
  let i = start + 1;
  while (i < sql.length) {
    if (escape && sql[i] === escape) i += 2;
    else if (sql[i] === quote) {
      if (sql[i + 1] !== quote) return i + 1;
      i += 2;
    } else i++;
  }
  return sql.length;
}

/** A statement for MySQL/MariaDB: `?` for each `$n`, and which value (0-based) each `?` takes. */
export function questionMarkStatement(sql: string): { text: string; order: number[] } {
  const { placeholders } = scanStatement(sql, 'mysql');
  let text = '';
  let from = 0;
  for (const p of placeholders) {
    text += sql.slice(from, p.index) + '?';
    from = p.index + p.length;
  }
  return { text: text + sql.slice(from), order: placeholders.map((p) => p.number - 1) };
}
