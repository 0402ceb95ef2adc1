// Estimation bench for the batch cost model: relative error of m and o, 95% interval coverage and time
// per fit, OLS against Theil–Sen, by sample count and noise/outlier level. Run: node dist/test/bench/estimate.bench.js
import Table from 'cli-table3'
import {fitCostModel} from '../../src/analyze/fit-cost-model.js'
import type {LinearCostFit} from '../../src/model/cost-model.js'
import {median} from '../../src/analyze/stats.js'
import {generateBatchSamples} from '../helpers/generate-samples.js'

interface Scenario {
  label: string
  mMsPerEvent: number
  oMs: number
  maxEvents: number
  relativeNoise: number
  outlierShare: number
  outlierMs: number
}

const SCENARIOS: Scenario[] = [
  {label: 'm .02 o .4, 5% noise', mMsPerEvent: 0.02, oMs: 0.4, maxEvents: 500, relativeNoise: 0.05, outlierShare: 0, outlierMs: 9},
  {label: 'm .02 o .4, 5% noise, 2% slow', mMsPerEvent: 0.02, oMs: 0.4, maxEvents: 500, relativeNoise: 0.05, outlierShare: 0.02, outlierMs: 9},
  {label: 'm .02 o .4, 20% noise, 5% slow', mMsPerEvent: 0.02, oMs: 0.4, maxEvents: 500, relativeNoise: 0.2, outlierShare: 0.05, outlierMs: 9},
  {label: 'm 1 o 5, 5% noise, 2% slow', mMsPerEvent: 1, oMs: 5, maxEvents: 100, relativeNoise: 0.05, outlierShare: 0.02, outlierMs: 200},
]
const COUNTS = [20, 50, 200, 1000]
const SEEDS = 12

interface Tally {
  mErrors: number[]
  oErrors: number[]
  covered: number
}

const newTally = (): Tally => ({mErrors: [], oErrors: [], covered: 0})

function record(tally: Tally, fit: LinearCostFit, scenario: Scenario): void {
  tally.mErrors.push(Math.abs(fit.mMsPerEvent - scenario.mMsPerEvent) / scenario.mMsPerEvent)
  tally.oErrors.push(Math.abs(fit.oMs - scenario.oMs) / scenario.oMs)
  const m = fit.mIntervalMsPerEvent
  const o = fit.oIntervalMs
  if (m.low <= scenario.mMsPerEvent && scenario.mMsPerEvent <= m.high && o.low <= scenario.oMs && scenario.oMs <= o.high) tally.covered++
}

const percent = (x: number) => `${(x * 100).toFixed(1)}%`

function main(): void {
  const started = performance.now()
  const table = new Table({
    head: ['scenario', 'n', 'OLS m err', 'OLS o err', 'OLS cover', 'robust m err', 'robust o err', 'robust cover', 'fits', 'ms/fit'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  })
  for (const scenario of SCENARIOS) {
    for (const count of COUNTS) {
      const ols = newTally()
      const robust = newTally()
      let fitted = 0
      let fitMs = 0
      for (let seed = 1; seed <= SEEDS; seed++) {
        const samples = generateBatchSamples({
          seed: seed * 7919 + count,
          count,
          mMsPerEvent: scenario.mMsPerEvent,
          oMs: scenario.oMs,
          maxEvents: scenario.maxEvents,
          relativeNoise: scenario.relativeNoise,
          outlierShare: scenario.outlierShare,
          outlierMs: scenario.outlierMs,
        })
        const t0 = performance.now()
        const fit = fitCostModel(samples)
        fitMs += performance.now() - t0
        if (fit.status !== 'fitted' && fit.status !== 'bad-model') continue
        fitted++
        record(ols, fit.ols, scenario)
        record(robust, fit.robust, scenario)
      }
      table.push([
        scenario.label,
        count,
        percent(median(ols.mErrors)),
        percent(median(ols.oErrors)),
        `${ols.covered}/${fitted}`,
        percent(median(robust.mErrors)),
        percent(median(robust.oErrors)),
        `${robust.covered}/${fitted}`,
        `${fitted}/${SEEDS}`,
        (fitMs / SEEDS).toFixed(2),
      ])
    }
  }
  // Theil–Sen cost beyond the exhaustive limit (deterministic pair subsample).
  const timing = new Table({head: ['n', 'pairs', 'subsampled', 'ms/fit']})
  for (const count of [2000, 10_000, 50_000]) {
    const samples = generateBatchSamples({seed: 5, count, mMsPerEvent: 0.02, oMs: 0.4, outlierShare: 0.02})
    const t0 = performance.now()
    const fit = fitCostModel(samples)
    const ms = performance.now() - t0
    if (fit.status === 'fitted') timing.push([count, fit.robust.pairsUsed ?? 0, String(fit.robust.pairsSubsampled), ms.toFixed(1)])
  }
  console.log(`Cost model T = m·B + o: median relative error over ${SEEDS} seeds; "cover" = both 95% intervals hold the truth`)
  console.log(table.toString())
  console.log(timing.toString())
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

main()
