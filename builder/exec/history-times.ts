import type { HistoryEntry } from '../../layers/types.js';

/**
 * Image times as BuildKit sets them, so that a fully cached rebuild gives the same image: a step
 * that made a layer is dated when its result was first made (a cache hit keeps that time), a step
 * that only changed the config takes the time of a neighbouring layer, and the image is as old as
 * its last history entry. With SOURCE_DATE_EPOCH every new entry has that time.
 */

/** The `created` of a new history entry: the epoch when there is one, else when the step's result was made (none for a config-only step). */
export function stepCreated(made: string | undefined, sourceDateEpoch: number | undefined): string | undefined {
  return sourceDateEpoch !== undefined ? new Date(sourceDateEpoch * 1000).toISOString() : made;
}

/**
 * Fills in the entries without a time, as BuildKit's exporter does: those before the first new
 * layer take that layer's time, later ones the time of the layer before them. With no layer
 * time anywhere they stay undated.
 */
export function fillHistoryTimes(history: readonly HistoryEntry[]): HistoryEntry[] {
  let fill: string | undefined;
  let seenUndated = false;
  for (const entry of history) {
    if (entry.created === undefined) seenUndated = true;
    else {
      fill = entry.created;
      if (seenUndated) break;
    }
  }
  seenUndated = false;
  return history.map((entry) => {
    if (entry.created === undefined) {
      seenUndated = true;
      return fill === undefined ? entry : { ...entry, created: fill };
    }
    if (seenUndated) fill = entry.created;
    return entry;
  });
}

/** The image's `created`: its last dated history entry's time. */
export function imageCreated(history: readonly HistoryEntry[]): string | undefined {
  return history.reduce<string | undefined>((last, entry) => entry.created ?? last, undefined);
}
