/** A finding about a spec: data, never thrown; sorted and printed by the CLI. */
export interface Diagnostic {
  file: string;
  /** 1-based */
  line: number;
  /** 1-based */
  column: number;
  severity: 'error' | 'warning';
  /** Stable id, grouped by phase: yaml/…, schema/…, spec/…, hl7/… */
  code: string;
  message: string;
  hint?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.column}: ${d.severity} ${d.code}: ${d.message}${d.hint ? `\n  hint: ${d.hint}` : ''}`;
}

export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.code.localeCompare(b.code));
}

export function hasErrors(list: readonly Diagnostic[]): boolean {
  return list.some((d) => d.severity === 'error');
}
