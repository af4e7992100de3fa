// Which span an order's trend opens on: the smallest one offered that holds the readings from
// before the fault. On a fresh install a device has minutes of history, not a day: a 24 h chart
// would squeeze them into its last pixels.
"use strict";

const HOUR_MS = 3_600_000;

/** The earliest bucket of any series, or null when the trend holds no reading. */
export function earliestReadingMs(trend) {
  const starts = (trend?.series ?? []).flatMap((s) => (s.buckets ?? []).map((b) => b.start_ms));
  return starts.length ? Math.min(...starts) : null;
}

/** Of `spansH` (hours before the fault), the smallest whose start is no later than the first
 * reading (one bucket of slack: a bucket starts before its first reading); the largest when
 * none does, or when there is nothing to show. */
export function defaultSpanH(trend, faultMs, spansH) {
  const largest = Math.max(...spansH);
  const earliest = earliestReadingMs(trend);
  if (earliest === null || faultMs === null || faultMs === undefined) return largest;
  const slackMs = (trend.interval_s ?? 0) * 1000;
  const fitting = spansH.filter((h) => earliest + slackMs >= faultMs - h * HOUR_MS);
  return fitting.length ? Math.min(...fitting) : largest;
}
