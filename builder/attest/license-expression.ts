/**
 * Whether text is a syntactically valid SPDX license expression (SPDX 2.3 Annex D): license ids
 * (optionally `+`), `LicenseRef-`/`DocumentRef-…:LicenseRef-` references, AND, OR, WITH and
 * parentheses. Operators are matched case-sensitively, as Annex D says, so prose such as
 * `GPL2 or later` is not taken for an expression. The ids are not checked against the license
 * list, which tsbuild does not carry.
 */
export function isLicenseExpression(text: string): boolean {
  const tokens = text.match(/\(|\)|[^\s()]+/g);
  if (!tokens) return false;
  let position = 0;
  const peek = (): string | undefined => tokens[position];
  const isOperator = (token: string | undefined, op: string): boolean => token === op;
  const id = /^(?:DocumentRef-[A-Za-z0-9.-]+:)?[A-Za-z0-9.-]+\+?$/;
  const term = (): boolean => {
    const token = tokens[position++];
    if (token === '(') {
      if (!expression()) return false;
      return tokens[position++] === ')';
    }
    if (token === undefined || !id.test(token) || ['AND', 'OR', 'WITH'].includes(token)) return false;
    if (isOperator(peek(), 'WITH')) {
      position++;
      const exception = tokens[position++];
      return exception !== undefined && /^[A-Za-z0-9.-]+$/.test(exception);
    }
    return true;
  };
  const expression = (): boolean => {
    if (!term()) return false;
    while (isOperator(peek(), 'AND') || isOperator(peek(), 'OR')) {
      position++;
      if (!term()) return false;
    }
    return true;
  };
  return expression() && position === tokens.length;
}
