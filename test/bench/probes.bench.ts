// Attach-time probes on the reference pipeline (simulator mode, 20 000 events/s): events applied per second
// with and without the probes, in alternating phases on one session, and the stall the install and the
// removal cause in the target (the longest gap of a 1 ms interval timer inside it, next to the longest
// gap over a phase with nothing happening); then the same install taken apart step by step (CDP round
// trip, each patch, a forced queue lookup, removal) and the zongji queryObjects stall. Figures only.
// Run: npm run bench -- probes.
import {attachTarget, type InspectorSession} from '../../src/attach/index.js'
import {installProbesIn, removeProbes} from '../../src/collect/probe-session.js'
import {pause, startPipeline} from '../helpers/pipeline-process.js'
import {measureInstallSteps, measureProbeRounds, probeRoundsTable, stopStallMonitor, type ProbeRounds, type StepCost} from '../helpers/target-stall.js'

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
  const lookups: string[] = []
  let queryObjects = 'not run (no zongji class loaded)'
  let measured: ProbeRounds
  let steps: StepCost[]
  try {
    measured = await measureProbeRounds(session, ROUNDS, () => phaseRate(session), (status) => {
      if (libraries.length === 0) libraries.push(...status.libraries.map((l) => `${l.name} ${l.version} ${l.state}`))
      lookups.push(status.queueLookupMs === null ? 'not run' : `${status.queueLookupMs.toFixed(0)} ms`)
    })
    steps = await measureInstallSteps(session)
    const status = await installProbesIn(session, {findInstances: true, budgetMs: 60_000})
    if (status.queryObjectsMs !== null) queryObjects = `${status.queryObjectsMs.toFixed(1)} ms (${status.adopted} zongji instance(s))`
    await removeProbes(session)
    await stopStallMonitor(session)
  } finally {
    await session.detach()
    await pipeline.stop()
  }
  const extra: Array<[string, string]> = [
    ['libraries the probes found', libraries.join('; ') || 'none'],
    ['queue lookup at each install (queueLookupMs)', lookups.join(', ')],
    ['zongji Runtime.queryObjects (full GC; at the first read when no instance emitted)', queryObjects],
  ]
  process.stdout.write(`${probeRoundsTable(measured, 'events/s', PHASE_MS, extra, steps)}\n`)
}

await main()
