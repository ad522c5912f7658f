import type { Hl7Value } from '../hl7/message.js';
import { Message } from '../hl7/message.js';
import { parsePath } from '../hl7/path.js';
import './patterns.js'; // bounds the time of every pattern a spec gives

/**
 * A declarative condition on a message, as written in a spec's `accept` rules:
 * a path test, a message type test, or all/any/not of other conditions.
 */
export type Condition =
  | { path: string; equals: string }
  | { path: string; in: readonly string[] }
  | { path: string; matches: string }
  | { path: string; exists: boolean }
  | { path: string; empty: boolean }
  | { message_type: readonly string[] }
  | { all: readonly Condition[] }
  | { any: readonly Condition[] }
  | { not: Condition };

const MSH_9_1 = parsePath('MSH-9.1');
const MSH_9_2 = parsePath('MSH-9.2');

/** MSH-9 as CODE^TRIGGER (structure left out), the form specs use. */
export function messageTypeOf(message: Message): string {
  const code = message.getText(MSH_9_1);
  const trigger = message.getText(MSH_9_2);
  return trigger ? `${code}^${trigger}` : code;
}

/** `ADT^A01` matches `ADT^A01`; `ADT` matches any ADT trigger. */
export function messageTypeMatches(message: Message, patterns: readonly string[]): boolean {
  const code = message.getText(MSH_9_1);
  const trigger = message.getText(MSH_9_2);
  for (const p of patterns) {
    // p === `${code}^${trigger}`, without making that string for every message.
    const isType = trigger ? p.length === code.length + 1 + trigger.length && p.startsWith(code) && p.charCodeAt(code.length) === 0x5e && p.endsWith(trigger) : p === code;
    if (isType || (p === code && !p.includes('^'))) return true;
  }
  return false;
}

const regexCache = new Map<string, RegExp>();

/** What a condition reads from: a message, or a scope inside an `each` (paths relative to it). */
export interface ConditionSource {
  readonly message?: Message;
  get(path: string): Hl7Value;
}

export function evaluate(condition: Condition, source: Message | ConditionSource): boolean {
  if ('all' in condition) return condition.all.every((c) => evaluate(c, source));
  if ('any' in condition) return condition.any.some((c) => evaluate(c, source));
  if ('not' in condition) return !evaluate(condition.not, source);
  if ('message_type' in condition) return messageTypeMatches(source instanceof Message ? source : source.message!, condition.message_type);
  const value = source.get(condition.path);
  const text = value ?? '';
  if ('equals' in condition) return text === condition.equals;
  if ('in' in condition) return condition.in.includes(text);
  if ('matches' in condition) {
    let re = regexCache.get(condition.matches);
    if (!re) regexCache.set(condition.matches, (re = new RegExp(condition.matches)));
    return re.test(text);
  }
  if ('exists' in condition) return (text !== '' || value === null) === condition.exists;
  return (text === '') === condition.empty;
}

/** Describes a condition in words, for rejection reasons and generated comments. */
export function describeCondition(condition: Condition): string {
  if ('all' in condition) return condition.all.map(describeCondition).join(' and ');
  if ('any' in condition) return `(${condition.any.map(describeCondition).join(' or ')})`;
  if ('not' in condition) return `not ${describeCondition(condition.not)}`;
  if ('message_type' in condition) return `message type is ${condition.message_type.join(', ')}`;
  if ('equals' in condition) return `${condition.path} = "${condition.equals}"`;
  if ('in' in condition) return `${condition.path} in (${condition.in.join(', ')})`;
  if ('matches' in condition) return `${condition.path} matches /${condition.matches}/`;
  if ('exists' in condition) return `${condition.path} ${condition.exists ? 'is valued' : 'is not valued'}`;
  return `${condition.path} is ${condition.empty ? '' : 'not '}empty`;
}
