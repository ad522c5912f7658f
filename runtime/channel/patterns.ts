import { setFlagsFromString } from 'node:v8';
import safeRegex from 'safe-regex2';

// A spec's regular expression runs on text from the message, which a sender controls. V8's
// backtracking engine can take exponential time on some patterns (`^(\w+\s?)*$` on 33 letters
// and a "!": minutes), and no processing budget can interrupt one `replace` call. With these
// flags V8 reruns a match that backtracks too much in its linear-time engine, which gives the
// same result; set when the runtime loads, before any channel's pattern is compiled. The second
// flag lets `patternProblem` ask whether a pattern can run in linear time (the `l` flag).
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
setFlagsFromString('--enable-experimental-regexp-engine');

/**
 * What is wrong with a spec's pattern, if anything: not JavaScript regular-expression syntax,
 * or a pattern that may backtrack catastrophically and that the linear-time engine cannot run
 * (it uses a backreference or a lookaround), so nothing would bound its time.
 */
export function patternProblem(pattern: string): { code: 'spec/regex' | 'spec/regex-backtracking'; message: string; hint: string } | undefined {
  try {
    new RegExp(pattern, 'g');
  } catch (err) {
    return {
      code: 'spec/regex',
      message: `"${pattern}" is not a regular expression: ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/g?: /, '')}`,
      hint: 'JavaScript syntax; escape special characters with \\ (in YAML double quotes write \\\\)',
    };
  }
  if (runsInLinearTime(pattern) || safeRegex(pattern)) return undefined;
  return {
    code: 'spec/regex-backtracking',
    message: `"${pattern}" can take exponential time on some input (a repetition inside a repetition), and its backreference or lookaround keeps hl7c from running it in linear time`,
    hint: 'drop the backreference or lookaround, or the nested repetition (write (\\w+\\s)*\\w+ rather than (\\w+\\s?)*)',
  };
}

function runsInLinearTime(pattern: string): boolean {
  try {
    new RegExp(pattern, 'l');
    return true;
  } catch {
    return false;
  }
}
