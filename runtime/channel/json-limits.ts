/** Objects and arrays nested deeper than this in a posted body are refused (400) before parsing. */
export const MAX_JSON_DEPTH = 64;

/**
 * The offset where JSON text first nests deeper than `limit`, or undefined. A scan of the
 * brackets outside strings, so a hostile body is refused before JSON.parse and the channel's
 * recursive reads ever see it.
 */
export function jsonDepthOver(text: string, limit: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return i;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return undefined;
}
