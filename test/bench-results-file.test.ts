import { expect, test } from 'vitest';
import { CONNECTIONS_HEADING, keptSections, replaceSection } from '../bench/results-file.js';

const connections = (figure: string) => `## 2,000 idle or dripping connections (hl7c serve as shipped)\n\n| sender | msgs/s |\n| alone | ${figure} |\n`;

test('the connections benchmark replaces its own section of bench/RESULTS.md and leaves the others', () => {
  const full = '# hl7c benchmark results\n\n## Parse\n\nparse table\n\n## Targets\n\ntargets\n';
  const once = replaceSection(full, CONNECTIONS_HEADING, connections('393'));
  expect(once).toBe(`${full}\n${connections('393')}`);
  const twice = replaceSection(once, CONNECTIONS_HEADING, connections('401'));
  expect(twice).toBe(`${full}\n${connections('401')}`);
  // A section in the middle is replaced where it is.
  const middle = `# r\n\n${connections('1')}\n## Targets\n\nt\n`;
  expect(replaceSection(middle, CONNECTIONS_HEADING, connections('2'))).toBe(`# r\n\n${connections('2')}\n## Targets\n\nt\n`);
});

test('npm run bench rewrites the file and appends the sections other benchmarks wrote', () => {
  const file = `# hl7c benchmark results\n\n## Parse\n\nold\n\n${connections('393')}`;
  expect(keptSections(file)).toBe(connections('393'));
  expect(keptSections('# hl7c benchmark results\n\n## Parse\n\nold\n')).toBe('');
});
