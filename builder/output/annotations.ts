import { TsbuildError } from '../../layers/errors.js';
import { formatPlatform, platformMatches } from '../../layers/platform.js';
import type { Platform } from '../../layers/types.js';
import { parsePlatform } from '../plan/platform.js';

/**
 * Where an `--annotation` goes, as buildx names the places: the image manifest, the descriptor
 * that points at it (in the image index, or in the layout's index.json for a single platform),
 * the image index, or the descriptor that points at the index (index.json).
 */
export type AnnotationLevel = 'manifest' | 'manifest-descriptor' | 'index' | 'index-descriptor';

export interface Annotation {
  readonly level: AnnotationLevel;
  /** Set when only the manifest of this platform gets it (`manifest[linux/amd64]:KEY=VALUE`). */
  readonly platform?: Platform;
  readonly key: string;
  readonly value: string;
  /** The `--annotation` value it came from, for messages. */
  readonly text: string;
}

const LEVELS: readonly AnnotationLevel[] = ['manifest', 'manifest-descriptor', 'index', 'index-descriptor'];
/** A level and an optional platform in square brackets, as buildx accepts them. */
const LEVEL_PATTERN = /^([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?$/;

/**
 * Parses one `--annotation` value: `KEY=VALUE` (the manifest), or `LEVEL[,LEVEL…]:KEY=VALUE`
 * where a manifest level may name a platform, `manifest[linux/arm64]:KEY=VALUE`.
 */
export function parseAnnotation(text: string): Annotation[] {
  const eq = text.indexOf('=');
  if (eq < 0) throw bad(text, 'expected KEY=VALUE or LEVEL:KEY=VALUE');
  const head = text.slice(0, eq);
  const value = text.slice(eq + 1);
  const colon = head.indexOf(':');
  const key = colon < 0 ? head : head.slice(colon + 1);
  if (key === '' || /\s/.test(key)) throw bad(text, 'the key must be non-empty and without spaces');
  if (colon < 0) return [{ level: 'manifest', key, value, text }];
  return head
    .slice(0, colon)
    .split(',')
    .map((part) => {
      const match = LEVEL_PATTERN.exec(part);
      const level = match?.[1] as AnnotationLevel | undefined;
      if (match === null || level === undefined || !LEVELS.includes(level)) {
        throw bad(text, `unknown level "${part}" (expected ${LEVELS.join(', ')}, a manifest level optionally with [os/arch])`);
      }
      if (match[2] === undefined) return { level, key, value, text };
      if (level.startsWith('index')) throw bad(text, `an ${level} annotation applies to the whole index: drop [${match[2]}]`);
      return { level, platform: parsePlatform(match[2]), key, value, text };
    });
}

/** The annotations of a build, sorted by where they go. */
export class ImageAnnotations {
  constructor(readonly all: readonly Annotation[] = []) {}

  get isEmpty(): boolean {
    return this.all.length === 0;
  }

  has(level: AnnotationLevel): boolean {
    return this.all.some((a) => a.level === level);
  }

  /** For the manifest of `platform`. */
  manifest(platform: Platform): Record<string, string> | undefined {
    return this.collect('manifest', platform);
  }

  /** For the descriptor of the manifest of `platform`. */
  manifestDescriptor(platform: Platform): Record<string, string> | undefined {
    return this.collect('manifest-descriptor', platform);
  }

  index(): Record<string, string> | undefined {
    return this.collect('index');
  }

  indexDescriptor(): Record<string, string> | undefined {
    return this.collect('index-descriptor');
  }

  /**
   * Fails, before anything is built, on an annotation that no image of this build can carry: a
   * platform that is not built, or an index level when one platform gives no index.
   */
  checkFor(platforms: readonly Platform[]): void {
    for (const a of this.all) {
      if (a.platform !== undefined && !platforms.some((p) => platformMatches(p, a.platform!))) {
        throw bad(a.text, `${formatPlatform(a.platform)} is not built (building ${platforms.map(formatPlatform).join(', ')})`);
      }
      if (platforms.length === 1 && a.level.startsWith('index')) {
        throw bad(a.text, 'a single-platform build has no image index; use manifest: or manifest-descriptor:, or build several --platform values');
      }
    }
  }

  private collect(level: AnnotationLevel, platform?: Platform): Record<string, string> | undefined {
    const chosen = this.all.filter((a) => a.level === level && (a.platform === undefined || (platform !== undefined && platformMatches(a.platform, platform))));
    // Platform-specific values are applied last, so they win over the general ones.
    chosen.sort((a, b) => Number(a.platform !== undefined) - Number(b.platform !== undefined));
    return chosen.length === 0 ? undefined : Object.fromEntries(chosen.map((a) => [a.key, a.value]));
  }
}

function bad(text: string, why: string): TsbuildError {
  return new TsbuildError('BAD_FLAG', `invalid --annotation "${text}": ${why}`);
}
