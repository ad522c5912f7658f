import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { importMirth, MirthReadError } from '../../import/mirth/index.js';
import type { ImportTodo } from '../../import/mirth/index.js';
import { validateSpecs } from '../../spec/validate.js';
import type { CliIo } from '../io.js';
import { printDiagnostics } from './validate.js';

export interface ImportMirthArgs {
  files: string[];
  out: string;
  force: boolean;
}

/**
 * `hl7c import mirth`: one spec per channel of the exports, written to `out`; then the list of
 * what was left as TODO(import), each with its place in the export, and the validation of
 * what was written.
 */
export async function importMirthCommand(args: ImportMirthArgs, io: CliIo): Promise<number> {
  const inputs: Array<{ file: string; xml: string }> = [];
  for (const f of args.files) inputs.push({ file: f, xml: readFileSync(resolve(io.cwd, f), 'utf8') });
  let result;
  try {
    result = importMirth(inputs);
  } catch (err) {
    if (err instanceof MirthReadError) {
      io.stderr(`hl7c import mirth: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const out = resolve(io.cwd, args.out);
  const targets = result.specs.map((s) => join(out, s.fileName));
  const taken = targets.filter((t) => existsSync(t));
  if (taken.length && !args.force) {
    io.stderr(`hl7c import mirth: ${taken.map((t) => relative(io.cwd, t)).join(', ')} already exist${taken.length === 1 ? 's' : ''}; nothing written (--force overwrites)\n`);
    return 1;
  }
  mkdirSync(out, { recursive: true });
  result.specs.forEach((s, i) => {
    writeFileSync(targets[i]!, s.text);
    io.stdout(`wrote ${relative(io.cwd, targets[i]!) || targets[i]} (Mirth channel "${s.mirthName}" from ${s.source})\n`);
  });
  io.stdout(formatTodos(result.todos));
  const validation = await validateSpecs(targets, { cwd: io.cwd });
  printDiagnostics(validation.diagnostics, 'text', io);
  const errors = validation.diagnostics.filter((d) => d.severity === 'error').length;
  io.stdout(`${result.specs.length} spec(s) written, ${result.todos.length} TODO(import) to review, ${errors} validation error(s)\n`);
  return errors > 0 ? 1 : 0;
}

/** The report: each TODO with its export file, channel, connector and step. */
export function formatTodos(todos: ImportTodo[]): string {
  if (todos.length === 0) return 'Nothing was left to translate by hand.\n';
  const lines = [`\nLeft as TODO(import) (search the specs for TODO(import)):`];
  let last = '';
  for (const t of todos) {
    const head = `${t.file} › channel "${t.channel}"`;
    if (head !== last) lines.push(`  ${head}`);
    last = head;
    lines.push(`    ${t.line ? `line ${t.line}, ` : ''}${t.location}: ${t.what}`);
  }
  return lines.join('\n') + '\n\n';
}
