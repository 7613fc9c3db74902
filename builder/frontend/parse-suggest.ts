/** "(did you mean X?)" hints for misspelt instruction and flag names. */

/** Appends the closest option (edit distance below 3) to `message`, if there is one. */
export function withSuggestion(
  message: string,
  value: string,
  options: readonly string[],
  caseSensitive: boolean,
): string {
  const wanted = caseSensitive ? value : value.toLowerCase();
  let best = '';
  let bestDistance = 3;
  const wantedLength = Array.from(wanted).length;
  for (const option of [...options].sort()) {
    const candidate = caseSensitive ? option : option.toLowerCase();
    // An exact match means the failure has nothing to do with spelling.
    if (candidate === wanted) return message;
    // Lengths this far apart cannot be close; a hostile megabyte-long name must not cost seconds.
    if (Math.abs(Array.from(candidate).length - wantedLength) >= bestDistance) continue;
    const distance = editDistance(wanted, candidate);
    if (distance < bestDistance) {
      best = caseSensitive ? candidate : matchCase(candidate, value);
      bestDistance = distance;
    }
  }
  return best === '' ? message : `${message} (did you mean ${best}?)`;
}

/** Follows the user's casing when it is all lower or all upper case. */
function matchCase(option: string, typed: string): string {
  if (typed === typed.toLowerCase()) return option.toLowerCase();
  if (typed === typed.toUpperCase()) return option.toUpperCase();
  return option;
}

/** Levenshtein distance over code points. */
function editDistance(a: string, b: string): number {
  const left = Array.from(a);
  const right = Array.from(b);
  let previous = Array.from({ length: right.length + 1 }, (_, i) => i);
  for (let i = 1; i <= left.length; i++) {
    const current = [i];
    for (let j = 1; j <= right.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (left[i - 1] === right[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[right.length] ?? 0;
}
