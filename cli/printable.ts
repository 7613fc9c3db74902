const MAX_ERROR_LINE = 1000;

/**
 * A message as one readable line of bounded length: it may quote a Dockerfile's own text, which
 * can hold control characters or be a word of megabytes. The middle of a long one is left out.
 */
export function printable(message: string): string {
  const line = message.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (ch) => (ch === '\n' ? '\\n' : ch === '\r' ? '\\r' : `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`));
  if (line.length <= MAX_ERROR_LINE) return line;
  return `${line.slice(0, 700)} ...(${line.length - 900} characters left out)... ${line.slice(-200)}`;
}
