// Attach-time probes on the reference pipeline (simulator mode, 20 000 events/s): events applied per second
// with and without the probes, in alternating phases on one session, and the stall the install and the
// removal cause in the target (the longest gap of a 1 ms interval timer inside it, next to the longest
// gap over a phase with nothing happening). Also the queryObjects stall when it runs. Figures only.
// Run: npm run bench -- probes.
import Table from 'cli-table3'

import {attachTarget, type InspectorSession} from '../../src/attach/index.js'
import {installProbesIn, removeProbes} from '../../src/collect/probe-session.js'
import {pause, startPipeline} from '../helpers/pipeline-process.js'
import {measureProbeRounds, stopStallMonitor, type ProbeRounds} from '../helpers/target-stall.js'

const PHASE_MS = 5000
const ROUNDS = 3


async function eventsApplied(session: InspectorSession): Promise<{atMs: number; events: number}> {
  const snapshot = await session.readSnapshot()
  return {atMs: snapshot!.takenAtMs, events: snapshot!.counters.eventsApplied ?? 0}
}

async function phaseRate(session: InspectorSession): Promise<number> {
  const a = await eventsApplied(session)
  await pause(PHASE_MS)
  const b = await eventsApplied(session)
  return ((b.events - a.events) * 1000) / (b.atMs - a.atMs)
}

async function main(): Promise<void> {
  const pipeline = await startPipeline(['--scenario=healthy', '--simulate', '--rate=20000'])
  const session = await attachTarget({inspect: pipeline.fields.inspect})
  const libraries: string[] = []
  let queryObjects: string = 'not run (no zongji class loaded)'
  let measured: ProbeRounds
  try {
    measured = await measureProbeRounds(session, ROUNDS, () => phaseRate(session), (status) => {
      if (libraries.length === 0) libraries.push(...status.libraries.map((l) => `${l.name} ${l.version} ${l.state}`))
    })
    const status = await installProbesIn(session, {findInstances: true})
    if (status.queryObjectsMs !== null) queryObjects = `${status.queryObjectsMs.toFixed(1)} ms (${status.adopted} zongji instance(s))`
    await removeProbes(session)
    await stopStallMonitor(session)
  } finally {
    await session.detach()
    await pipeline.stop()
  }
  const {without, withProbes, installStall, removeStall, idleStall} = measured
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  const max = (xs: number[]) => Math.max(...xs)
  const table = new Table({head: ['measure', 'value'], style: {head: [], border: []}})
  table.push(['libraries the probes found', libraries.join('; ') || 'none'])
  table.push([`events/s without probes (${ROUNDS} × ${PHASE_MS / 1000} s)`, without.map((x) => Math.round(x)).join(', ')])
  table.push([`events/s with probes (${ROUNDS} × ${PHASE_MS / 1000} s)`, withProbes.map((x) => Math.round(x)).join(', ')])
  table.push(['with / without (means)', `${((mean(withProbes) / mean(without)) * 100).toFixed(1)} %`])
  table.push(['install: longest target event-loop gap', `${installStall.map((x) => x.toFixed(1)).join(', ')} ms (max ${max(installStall).toFixed(1)})`])
  table.push(['removal: longest target event-loop gap', `${removeStall.map((x) => x.toFixed(1)).join(', ')} ms (max ${max(removeStall).toFixed(1)})`])
  table.push(['nothing happening (500 ms): longest gap', `${idleStall.map((x) => x.toFixed(1)).join(', ')} ms`])
  table.push(['Runtime.queryObjects (full GC)', queryObjects])
  process.stdout.write(`${table.toString()}\n`)
}

await main()
