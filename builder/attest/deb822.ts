/** Debian control-file syntax (deb822): stanzas of `Field: value` lines, continued by indented lines. */

/** The stanzas of `text`, each a map from lowercased field name to its value (continuation lines joined by newlines). */
export function parseStanzas(text: string): Array<Map<string, string>> {
  const stanzas: Array<Map<string, string>> = [];
  let current = new Map<string, string>();
  let field: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current.size > 0) stanzas.push(current);
      current = new Map();
      field = undefined;
    } else if ((line.startsWith(' ') || line.startsWith('\t')) && field !== undefined) {
      current.set(field, `${current.get(field)}\n${line.trim()}`);
    } else if (!line.startsWith('#')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      field = line.slice(0, colon).trim().toLowerCase();
      current.set(field, line.slice(colon + 1).trim());
    }
  }
  if (current.size > 0) stanzas.push(current);
  return stanzas;
}
