// The words of `ferrydiag lag`: the analysis returns a verdict's reason and the catch-up basis as codes
// with figures (src/model/lag-report.ts); this module alone turns them into sentences, for the text
// report, the --watch screen and the `summary` / `catchUp.note` fields of --json.

import type {LagAssessment, LagResult} from '../model/lag-result.js'
import type {CatchUpBasis, CatchUpEstimate, CatchUpRateFrom, LagGrowth, LagMissing, LagReason} from '../model/lag-report.js'
import {formatDurationMs, formatGrowthSecPerSec, formatNumber} from '../units.js'

/** One clause per missing code (the text report's next step names the flag that measures each). */
const MISSING_SHORT: Record<LagMissing, string> = {
  pipeline: 'no stage progress and no binlog position of the pipeline was measured',
  source: "the source's rate or end was not measured, so a quiet source cannot be told from a stuck read",
  window: 'one snapshot gives no rates',
  'end-to-end': "no figure shows events reaching the writer at the source's pace",
}

const CATCH_UP_NEEDS: Record<Extract<CatchUpBasis, {code: 'needs'}>['missing'][number], string> = {
  'transaction-lag': 'transaction lag',
  'stage-capacity': 'stage capacity',
  'source-rate': 'source rate',
}

const RATE_FROM: Record<CatchUpRateFrom, string> = {
  'source-status': 'source rate',
  'binlog-rows': 'source rate (binlog rows)',
  streamer: 'streamer rate (not back-pressured, so it follows the source)',
}

/** The verdict's one-line reason; `bottleneck` (from the same report) is named after a growing lag. */
export function describeLagReason(reason: LagReason, bottleneck: LagAssessment['bottleneck'] = null): string {
  switch (reason.code) {
    case 'position-frozen':
      return "the pipeline's binlog position has not moved while the source advanced"
    case 'no-progress': {
      const work: string[] = []
      if (reason.sourceAdvanced) work.push('the source advanced')
      if (reason.bufferedEvents > 0) work.push(`${reason.bufferedEvents} event(s) wait in buffers`)
      if (reason.handOffBlocked) work.push('the streamer holds an event it cannot hand off')
      return (
        `no progress by ${reason.stages.join(' or ') || 'the pipeline'} for ${formatDurationMs(reason.forMs)} ` +
        `while ${work.join(' and ') || 'work was waiting'}`
      )
    }
    case 'lag-growing':
      return (
        `lag is growing (${reason.growth.map(describeLagGrowth).join('; ')})` +
        (bottleneck ? `; bottleneck: ${bottleneck.stageName} (busy ${Math.round(bottleneck.busyMsPerSec)} ms/s)` : '')
      )
    case 'source-quiet-at-end':
      return 'the source produced no events and the pipeline is at its end'
    case 'keeps-up':
      return 'the pipeline keeps up: lag is not growing'
    case 'no-evidence':
      return `no evidence for a verdict: ${reason.missing.map((m) => MISSING_SHORT[m]).join('; ')}`
  }
}

function describeLagGrowth(growth: LagGrowth): string {
  switch (growth.code) {
    case 'transaction-lag-growing':
      return `${growth.stageName} transaction lag ${formatGrowthSecPerSec(growth.growthSecPerSec)}`
    case 'bytes-behind-growing':
      return `bytes behind +${Math.round(growth.bytesPerSec)} B/s`
    case 'streamer-back-pressured':
      return (
        `${growth.stageName} back-pressured ${Math.round(growth.backPressuredMsPerSec)} ms/s ` +
        `by ${growth.saturatedStageName} busy ${Math.round(growth.saturatedBusyMsPerSec)} ms/s`
      )
    case 'source-outpaces-streamer': {
      const unit = growth.eventsPerSecFrom === 'binlog-rows' ? 'rows/s' : 'events/s'
      return `source ${Math.round(growth.sourceEventsPerSec)} ${unit} > streamer ${Math.round(growth.streamerItemsPerSec)} items/s`
    }
  }
}

/** The catch-up estimate's reason, e.g. "capacity 669 events/s ≤ source rate 1000 events/s". */
export function describeCatchUp(catchUp: CatchUpEstimate): string {
  const basis = catchUp.basis
  const capacity = Math.round(catchUp.capacityEventsPerSec ?? 0)
  const rate = Math.round(catchUp.sourceEventsPerSec ?? 0)
  switch (basis.code) {
    case 'stuck':
      return 'the pipeline is stuck: it will not catch up until unblocked'
    case 'nothing-to-catch-up':
      return 'nothing to catch up'
    case 'within-timestamp-resolution':
      return 'lag within the 1 s timestamp resolution'
    case 'needs':
      return `needs ${basis.missing.map((m) => CATCH_UP_NEEDS[m]).join(', ')}`
    case 'capacity-at-most-rate':
      return `capacity ${capacity} events/s ≤ ${RATE_FROM[basis.rateFrom]} ${rate} events/s`
    case 'shrinking': {
      const shrinkSecPerSec = (catchUp.capacityEventsPerSec ?? 0) / (catchUp.sourceEventsPerSec ?? 1) - 1
      return (
        `lag ${formatDurationMs(basis.lagMs)} shrinks at ${formatNumber(shrinkSecPerSec, 2)} s/s ` +
        `(capacity ${capacity} vs ${RATE_FROM[basis.rateFrom]} ${rate} events/s)`
      )
    }
  }
}

/** The --json document: the assessment plus its worded `summary` and `catchUp.note`. */
export function wordLagResult(assessment: LagAssessment): LagResult {
  return {
    ...assessment,
    summary: describeLagReason(assessment.reason, assessment.bottleneck),
    catchUp: {...assessment.catchUp, note: describeCatchUp(assessment.catchUp)},
  }
}
