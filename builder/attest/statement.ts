/** in-toto attestation statements (in-toto/attestation spec, Statement v0.1), as BuildKit attaches them. */
import type { Digest, Platform } from '../../layers/types.js';
import { imagePurl } from './image-purl.js';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v0.1';

export interface Subject {
  readonly name: string;
  readonly digest: { readonly sha256: string };
}

export interface Statement {
  readonly _type: typeof STATEMENT_TYPE;
  readonly predicateType: string;
  readonly subject: readonly Subject[];
  readonly predicate: unknown;
}

/** The image manifest as the subject, once per name it goes by (`_` for an image without a name). */
export function imageSubjects(names: readonly string[], manifestDigest: Digest, platform: Platform): Subject[] {
  const digest = { sha256: manifestDigest.replace(/^sha256:/, '') };
  if (names.length === 0) return [{ name: '_', digest }];
  return names.map((name) => ({ name: imagePurl(name, platform), digest }));
}

export function statement(subject: readonly Subject[], predicateType: string, predicate: unknown): Statement {
  return { _type: STATEMENT_TYPE, predicateType, subject, predicate };
}
