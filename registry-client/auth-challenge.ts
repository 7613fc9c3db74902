/** One challenge of a `WWW-Authenticate` header, e.g. `Bearer realm="…",service="…",scope="…"`. */
export interface AuthChallenge {
  /** Lower-case scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameters with lower-case names. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;

/**
 * Parses `WWW-Authenticate` values (RFC 7235): several challenges per header, quoted strings with
 * backslash escapes and commas inside them (`scope="repository:a:pull,push"`).
 */
export function parseWwwAuthenticate(values: string | readonly string[] | undefined): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  for (const value of typeof values === 'string' ? [values] : values ?? []) {
    let pos = 0;
    const skip = (): void => {
      while (pos < value.length && (value[pos] === ' ' || value[pos] === '\t' || value[pos] === ',')) pos++;
    };
    const token = (): string | undefined => {
      TOKEN.lastIndex = pos;
      const match = TOKEN.exec(value);
      if (match === null) return undefined;
      pos = TOKEN.lastIndex;
      return match[0];
    };
    const quoted = (): string => {
      let out = '';
      pos++; // opening quote
      while (pos < value.length && value[pos] !== '"') {
        if (value[pos] === '\\' && pos + 1 < value.length) pos++;
        out += value[pos];
        pos++;
      }
      pos++; // closing quote
      return out;
    };
    let current: AuthChallenge | undefined;
    for (skip(); pos < value.length; skip()) {
      const start = pos;
      const word = token();
      if (word === undefined) {
        pos++; // a stray character; skip it
        continue;
      }
      let after = pos;
      while (value[after] === ' ' || value[after] === '\t') after++;
      if (value[after] === '=' && current !== undefined && !/^=+\s*(,|$)/.test(value.slice(after))) {
        // name=value parameter of the current challenge
        pos = after + 1;
        while (value[pos] === ' ' || value[pos] === '\t') pos++;
        const param = value[pos] === '"' ? quoted() : token() ?? '';
        current.params[word.toLowerCase()] = param;
      } else if (value[after] === '=' && current !== undefined) {
        // token68 form (`Negotiate abc==`): kept as the `token68` parameter
        pos = after;
        while (value[pos] === '=') pos++;
        current.params.token68 = value.slice(start, pos);
      } else {
        current = { scheme: word.toLowerCase(), params: {} };
        challenges.push(current);
      }
    }
  }
  return challenges;
}
