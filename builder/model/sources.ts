/** What a stage, a COPY or a bind mount reads from: the context, another stage, a named context or an image. */
import type { Image } from '../../layers/image.js';
import type { Descriptor, Digest, ImageConfig } from '../../layers/types.js';

/** A base image, from a registry or an OCI layout named by `--build-context`. */
export interface ResolvedImage {
  /** The image itself; its layer blobs are opened (or fetched) only when a step needs them. */
  readonly image: Image;
  /** For a pulled image: where it came from, so a push to the same registry can mount its blobs. */
  readonly source?: { readonly registry: string; readonly repository: string };
  readonly reference: string;
  readonly manifestDigest: Digest;
  readonly config: ImageConfig;
  readonly layers: readonly Descriptor[];
}

/** Where `COPY --from` and `RUN --mount=type=bind,from=` read. */
export type CopySource =
  | { readonly kind: 'context' }
  | { readonly kind: 'stage'; readonly index: number }
  | { readonly kind: 'local-context'; readonly name: string; readonly dir: string }
  | { readonly kind: 'image'; readonly contextName: string; readonly image: ResolvedImage };
