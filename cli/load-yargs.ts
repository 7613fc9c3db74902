import type { Argv } from 'yargs';

type YargsFactory = (argv: readonly string[]) => Argv;

let loading: Promise<YargsFactory> | undefined;

/**
 * yargs, loaded once. Its text-width helpers each make an `Intl.Segmenter` as they load, which
 * costs about 10 ms apiece (ICU's break rules), though only help and usage text ever measures a
 * string. While yargs loads, `Intl.Segmenter` makes segmenters that build the real one on first
 * use; the global is restored as soon as yargs has loaded.
 */
export function loadYargs(): Promise<YargsFactory> {
  loading ??= withDeferredSegmenters(async () => (await import('yargs')).default as unknown as YargsFactory);
  return loading;
}

async function withDeferredSegmenters<T>(load: () => Promise<T>): Promise<T> {
  const intl = Intl as unknown as { Segmenter: typeof Intl.Segmenter };
  const Segmenter = intl.Segmenter;
  intl.Segmenter = deferred(Segmenter);
  try {
    return await load();
  } finally {
    intl.Segmenter = Segmenter;
  }
}

/** A stand-in for `Segmenter` whose instances make the real segmenter when first used. */
function deferred(Segmenter: typeof Intl.Segmenter): typeof Intl.Segmenter {
  class DeferredSegmenter {
    private made: Intl.Segmenter | undefined;
    private readonly args: ConstructorParameters<typeof Intl.Segmenter>;

    constructor(...args: ConstructorParameters<typeof Intl.Segmenter>) {
      this.args = args;
    }

    segment(input: string): Intl.Segments {
      return this.real().segment(input);
    }

    resolvedOptions(): Intl.ResolvedSegmenterOptions {
      return this.real().resolvedOptions();
    }

    private real(): Intl.Segmenter {
      this.made ??= new Segmenter(...this.args);
      return this.made;
    }
  }
  return Object.assign(DeferredSegmenter, { supportedLocalesOf: Segmenter.supportedLocalesOf.bind(Segmenter) }) as unknown as typeof Intl.Segmenter;
}
