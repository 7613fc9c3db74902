/** What a build reports as it goes; the CLI renders these as plain lines or JSON. */
export type BuildEvent =
  | { readonly kind: 'note'; readonly message: string }
  | { readonly kind: 'step-start'; readonly step: number; readonly name: string }
  | { readonly kind: 'step-done'; readonly step: number; readonly seconds: number }
  | { readonly kind: 'step-output'; readonly step: number; readonly stream: 'stdout' | 'stderr'; readonly text: string }
  | { readonly kind: 'exported'; readonly what: string; readonly digest: string };

export type ProgressListener = (event: BuildEvent) => void;

export const silentProgress: ProgressListener = () => {};
