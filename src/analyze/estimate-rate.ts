// Estimates the source event rate R (events/s), mean and peak, from cumulative counters or per-event
// timestamps, and says when a streamer-side rate only measures how fast the writer drains.
import type {RateEstimate, RateOrigin} from '../model/cost-model.js'
import {quantileSorted} from './stats.js'

/** A cumulative counter reading: events seen up to timeMs (epoch or monotonic ms, consistently). */
export interface CountObservation {
  timeMs: number
  cumulativeEvents: number
}

export interface EstimateRateOptions {
  origin: RateOrigin
  /** Share of the window (0..1) the streamer spent back-pressured; only meaningful for 'streamer'. */
  streamerBackPressuredShare?: number
  /** Above this back-pressured share a streamer rate is the writer's rate, not the source's. Default 0.2. */
  backPressureTrustLimit?: number
  /** Bucket length for the peak. Default 1000 ms. */
  bucketMs?: number
  /** Quantile of bucket rates reported as the peak. Default 0.95. */
  peakQuantile?: number
}

interface ResolvedOptions {
  origin: RateOrigin
  bucketMs: number
  peakQuantile: number
  backPressuredShare: number | undefined
  trustLimit: number
}

function resolveOptions(options: EstimateRateOptions): ResolvedOptions {
  const bucketMs = options.bucketMs ?? 1000
  const peakQuantile = options.peakQuantile ?? 0.95
  const trustLimit = options.backPressureTrustLimit ?? 0.2
  if (!(bucketMs > 0) || !Number.isFinite(bucketMs)) {
    throw new RangeError(`Expected bucketMs to be a finite number > 0, got ${bucketMs}`)
  }
  if (!(peakQuantile >= 0 && peakQuantile <= 1)) {
    throw new RangeError(`Expected peakQuantile in [0, 1], got ${peakQuantile}`)
  }
  const share = options.streamerBackPressuredShare
  if (share !== undefined && !(share >= 0 && share <= 1)) {
    throw new RangeError(`Expected streamerBackPressuredShare in [0, 1], got ${share}`)
  }
  return {origin: options.origin, bucketMs, peakQuantile, backPressuredShare: share, trustLimit}
}

/**
 * From cumulative counter readings (e.g. the source's eventsProduced, or the streamer's itemsHandled).
 * A reading lower than the previous one is taken as a counter reset (process restart): the new
 * reading counts from zero. Bucket counts come from linear interpolation of the counter at bucket
 * edges, so readings sparser than a bucket smooth the peak (a note says so).
 */
export function estimateRateFromCounts(observations: readonly CountObservation[], options: EstimateRateOptions): RateEstimate {
  const resolved = resolveOptions(options)
  const notes: string[] = []
  const sorted = observations
    .filter((o) => Number.isFinite(o.timeMs) && Number.isFinite(o.cumulativeEvents))
    .slice()
    .sort((a, b) => a.timeMs - b.timeMs)
  if (sorted.length < 2) {
    throw new RangeError(`Expected at least 2 counter readings with finite values, got ${sorted.length}`)
  }
  // Rebuild a monotone cumulative series, absorbing resets.
  const times: number[] = [sorted[0].timeMs]
  const totals: number[] = [0]
  let resets = 0
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1].cumulativeEvents
    const current = sorted[i].cumulativeEvents
    const delta = current >= previous ? current - previous : current
    if (current < previous) resets++
    if (sorted[i].timeMs === times[times.length - 1]) {
      totals[totals.length - 1] += delta
      continue
    }
    times.push(sorted[i].timeMs)
    totals.push(totals[totals.length - 1] + delta)
  }
  if (resets > 0) notes.push(`${resets} counter reset(s) seen; counted from zero after each`)
  const windowMs = times[times.length - 1] - times[0]
  if (windowMs <= 0) throw new RangeError('Expected counter readings spanning a positive time window')
  const totalEvents = totals[totals.length - 1]

  const bucketRates: number[] = []
  const bucketCount = Math.floor(windowMs / resolved.bucketMs)
  let segment = 0
  const cumulativeAt = (t: number): number => {
    while (segment < times.length - 2 && times[segment + 1] < t) segment++
    const t0 = times[segment]
    const t1 = times[segment + 1]
    const share = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 1
    return totals[segment] + share * (totals[segment + 1] - totals[segment])
  }
  let previousTotal = cumulativeAt(times[0])
  for (let b = 1; b <= bucketCount; b++) {
    const total = cumulativeAt(times[0] + b * resolved.bucketMs)
    bucketRates.push(((total - previousTotal) * 1000) / resolved.bucketMs)
    previousTotal = total
  }
  let largestGapMs = 0
  for (let i = 1; i < times.length; i++) largestGapMs = Math.max(largestGapMs, times[i] - times[i - 1])
  if (largestGapMs > resolved.bucketMs) {
    notes.push(
      `readings up to ${Math.round(largestGapMs)} ms apart, longer than a ${resolved.bucketMs} ms bucket: ` +
        `the peak is smoothed over the gaps`,
    )
  }
  return finishEstimate(resolved, totalEvents, windowMs, bucketRates, notes)
}

/**
 * From per-event timestamps (ms). The window is [windowStartMs, windowEndMs] when given, else from the
 * first to the last event. Binlog event timestamps have 1-second resolution: use receive times when
 * the peak matters.
 */
export function estimateRateFromEvents(
  timestampsMs: readonly number[],
  options: EstimateRateOptions & {windowStartMs?: number; windowEndMs?: number},
): RateEstimate {
  const resolved = resolveOptions(options)
  const notes: string[] = []
  const times = timestampsMs.filter((t) => Number.isFinite(t))
  // A loop rather than Math.min(...times): spreading a large array overflows the call stack.
  let first = Number.NaN
  let last = Number.NaN
  for (const t of times) {
    if (!(t >= first)) first = t
    if (!(t <= last)) last = t
  }
  const start = options.windowStartMs ?? first
  const end = options.windowEndMs ?? last
  if (!(end > start)) {
    throw new RangeError(`Expected a window with end > start, got start ${start} and end ${end}`)
  }
  const inWindow = times.filter((t) => t >= start && t <= end)
  if (inWindow.length < times.length) notes.push(`${times.length - inWindow.length} event(s) outside the window ignored`)
  const windowMs = end - start
  const bucketCount = Math.floor(windowMs / resolved.bucketMs)
  const counts = new Array<number>(bucketCount).fill(0)
  for (const t of inWindow) {
    const index = Math.floor((t - start) / resolved.bucketMs)
    if (index < bucketCount) counts[index]++ // events in the trailing partial bucket count only in the mean
  }
  const bucketRates = counts.map((c) => (c * 1000) / resolved.bucketMs)
  const whole = inWindow.every((t) => t === Math.round(t / 1000) * 1000)
  if (inWindow.length > 1 && whole) {
    notes.push('timestamps fall on whole seconds (binlog resolution): peaks within a second are not visible')
  }
  return finishEstimate(resolved, inWindow.length, windowMs, bucketRates, notes)
}

function finishEstimate(
  options: ResolvedOptions,
  totalEvents: number,
  windowMs: number,
  bucketRates: number[],
  notes: string[],
): RateEstimate {
  const meanEventsPerSec = (totalEvents * 1000) / windowMs
  let peakEventsPerSec = meanEventsPerSec
  if (bucketRates.length > 0) {
    peakEventsPerSec = quantileSorted(Float64Array.from(bucketRates).sort(), options.peakQuantile)
  } else {
    notes.push(`window shorter than one ${options.bucketMs} ms bucket: peak taken as the mean`)
  }
  let trustworthy = true
  let lowerBoundOnly = false
  if (options.origin === 'streamer') {
    lowerBoundOnly = true
    const share = options.backPressuredShare
    if (share === undefined) {
      notes.push('streamer rate: its back-pressure share is not known, so it may be the writer\'s rate')
    } else if (share > options.trustLimit) {
      trustworthy = false
      notes.push(
        `streamer back-pressured ${(share * 100).toFixed(0)}% of the window (> ${(options.trustLimit * 100).toFixed(0)}%): ` +
          `its rate is the writer's drain rate, only a lower bound on the source rate; measure at the source (--source)`,
      )
    } else {
      // A rarely blocked streamer reads as fast as the source produces.
      lowerBoundOnly = false
    }
  }
  return {
    origin: options.origin,
    meanEventsPerSec,
    peakEventsPerSec,
    peakQuantile: options.peakQuantile,
    bucketMs: options.bucketMs,
    bucketCount: bucketRates.length,
    windowMs,
    totalEvents,
    trustworthy,
    lowerBoundOnly,
    notes,
  }
}
