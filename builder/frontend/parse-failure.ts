/**
 * A parse failure not yet tied to a line. The parser's entry points turn it into a
 * `SourceError` naming the instruction it came from.
 */
export class ParseFailure extends Error {
  override readonly name = 'ParseFailure';
}
