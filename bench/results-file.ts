/**
 * bench/RESULTS.md is written by more than one command: `npm run bench` writes its sections
 * whole, and other benchmarks (`--connections`) each own one section that the others keep.
 */

/** Headings of the sections that `npm run bench` does not write and must keep. */
export const CONNECTIONS_HEADING = /^## [\d,]+ idle or dripping connections/m;
/** Written by hand: what was tried for the durable-path targets, and why they stand where they do. */
export const DURABLE_JUDGEMENT_HEADING = /^## Durable path targets: judgement/m;
const KEPT = [CONNECTIONS_HEADING, DURABLE_JUDGEMENT_HEADING];

/** The section starting at the heading `pattern` matches, up to the next `## ` heading (or the end); '' when absent. */
function findSection(text: string, pattern: RegExp): { start: number; end: number } | undefined {
  const m = pattern.exec(text);
  if (!m) return undefined;
  const next = text.indexOf('\n## ', m.index + 1);
  return { start: m.index, end: next === -1 ? text.length : next + 1 };
}

/** The text with that section replaced by `section` (appended when it was not there). */
export function replaceSection(text: string, pattern: RegExp, section: string): string {
  const body = section.endsWith('\n') ? section : `${section}\n`;
  const found = findSection(text, pattern);
  if (!found) return `${text.replace(/\n*$/, '\n\n')}${body}`;
  const rest = text.slice(found.end);
  return text.slice(0, found.start) + body + (rest ? `\n${rest}` : '');
}

/** The sections other commands wrote, to append to a freshly written file. */
export function keptSections(text: string): string {
  return KEPT.map((p) => findSection(text, p))
    .filter((f): f is { start: number; end: number } => !!f)
    .map((f) => text.slice(f.start, f.end).replace(/\n*$/, '\n'))
    .join('\n');
}
