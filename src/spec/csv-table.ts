/**
 * A lookup table's CSV (RFC 4180: a header row, then code,value; a field in double quotes may
 * hold commas, line breaks and "" for a quote), with where each row and field starts, so that
 * validate can point into the CSV. Written here rather than taken from a CSV library because
 * the positions are the point, and the format is small.
 */

import type { Diagnostic } from '../diagnostics/diagnostic.js';

export interface CsvField {
  text: string;
  /** 1-based */
  line: number;
  /** 1-based */
  column: number;
}

/** A diagnostic about the table, at its line and column; the caller names the CSV file. */
export type CsvProblem = Omit<Diagnostic, 'file'>;

export interface CsvTable {
  table: Record<string, string>;
  problems: CsvProblem[];
}

/** Every record of a CSV text as its fields; blank lines are skipped. */
export function parseCsvRecords(text: string): { records: CsvField[][]; problems: CsvProblem[] } {
  const records: CsvField[][] = [];
  const problems: CsvProblem[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let lineStart = i;
  while (i < text.length) {
    const record: CsvField[] = [];
    for (;;) {
      const field: CsvField = { text: '', line, column: i - lineStart + 1 };
      // Spaces before an opening quote are allowed (and dropped), as the old reader trimmed them.
      let j = i;
      while (text[j] === ' ' || text[j] === '\t') j++;
      if (text[j] === '"') {
        field.column = j - lineStart + 1;
        let value = '';
        let k = j + 1;
        let closed = false;
        while (k < text.length) {
          const c = text[k]!;
          if (c === '"') {
            if (text[k + 1] === '"') {
              value += '"';
              k += 2;
              continue;
            }
            closed = true;
            k++;
            break;
          }
          if (c === '\n') {
            line++;
            lineStart = k + 1;
          }
          value += c;
          k++;
        }
        if (!closed) {
          problems.push({ line: field.line, column: field.column, severity: 'error', code: 'spec/lookup-csv-syntax', message: 'this quoted field is never closed: the rest of the file would be read as its value', hint: 'end it with "; write a quote inside as ""' });
        }
        let rest = '';
        while (k < text.length && text[k] !== ',' && text[k] !== '\n' && text[k] !== '\r') rest += text[k++];
        if (rest.trim() !== '') {
          problems.push({ line, column: k - rest.length - lineStart + 1, severity: 'error', code: 'spec/lookup-csv-syntax', message: `text after a closing quote: ${JSON.stringify(rest.trim())}`, hint: 'a quoted field ends at its closing quote: put everything inside the quotes, with "" for a quote' });
        }
        field.text = value;
        i = k;
      } else {
        let k = i;
        while (k < text.length && text[k] !== ',' && text[k] !== '\n' && text[k] !== '\r') k++;
        field.text = text.slice(i, k).trim();
        i = k;
      }
      record.push(field);
      if (text[i] === ',') {
        i++;
        continue;
      }
      break;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    line++;
    lineStart = i;
    records.push(record);
  }
  return { records: records.filter((r) => !(r.length === 1 && r[0]!.text === '')), problems };
}

/** A two-column lookup CSV as a table, and what is wrong with it (duplicate codes, rows without a value…). */
export function readLookupCsv(text: string): CsvTable {
  const { records, problems } = parseCsvRecords(text);
  const table: Record<string, string> = {};
  const first = new Map<string, CsvField[]>();
  for (const row of records.slice(1)) {
    const [code, value] = row;
    if (row.length < 2) {
      problems.push({ line: code!.line, column: code!.column, severity: 'warning', code: 'spec/lookup-row-without-value', message: `the row for ${JSON.stringify(code!.text)} has no value: it is left out of the table`, hint: 'write code,value; for an empty value write code, (with the comma)' });
      continue;
    }
    if (row.length > 2) {
      const extra = row[2]!;
      problems.push({ line: extra.line, column: extra.column, severity: 'error', code: 'spec/lookup-extra-column', message: `this row has ${row.length} fields; a lookup table has two: code,value`, hint: 'a value with a comma in it goes in double quotes: M,"male, adult"' });
      continue;
    }
    if (code!.text === '') {
      problems.push({ line: code!.line, column: code!.column, severity: 'warning', code: 'spec/lookup-empty-code', message: `a row with an empty code (value ${JSON.stringify(value!.text)}): it matches only an empty field`, hint: 'remove the row, or give it a code' });
    }
    const earlier = first.get(code!.text);
    if (earlier) {
      const same = earlier[1]!.text === value!.text;
      problems.push({
        line: code!.line,
        column: code!.column,
        severity: same ? 'warning' : 'error',
        code: 'spec/lookup-duplicate-code',
        message: same
          ? `code ${JSON.stringify(code!.text)} is listed again (line ${earlier[0]!.line}) with the same value`
          : `code ${JSON.stringify(code!.text)} is listed again with another value: ${JSON.stringify(earlier[1]!.text)} on line ${earlier[0]!.line}, ${JSON.stringify(value!.text)} here; only one can be used`,
        hint: same ? 'remove one of the two rows' : 'keep the row with the right value and remove the other',
      });
      continue;
    }
    first.set(code!.text, row);
    table[code!.text] = value!.text;
  }
  return { table, problems };
}
