// Measures how long a target's event loop stalls while the CLI does something to it: a 1 ms interval timer
// inside the target records its longest gap between ticks (for the probe benches).
import Table from 'cli-table3'

import type {InspectorSession} from '../../src/attach/index.js'
import {installProbes} from '../../src/agent/probes-core.cjs'
import {installQueueProbes} from '../../src/agent/queue-probes-core.cjs'
import {installProbesIn, lookUpQueues, removeProbes} from '../../src/collect/probe-session.js'
import {pause} from './pipeline-process.js'

const START = `(() => { const m = globalThis.__ferrydiagBenchMonitor ??= {max: 0, last: performance.now()};
  m.timer ??= setInterval(() => { const n = performance.now(); if (n - m.last > m.max) m.max = n - m.last; m.last = n }, 1);
  return true })()`
const RESET = `(() => { const m = globalThis.__ferrydiagBenchMonitor; m.max = 0; m.last = performance.now(); return true })()`
const READ = `globalThis.__ferrydiagBenchMonitor.max`
const STOP = `(() => { const m = globalThis.__ferrydiagBenchMonitor; clearInterval(m.timer); delete globalThis.__ferrydiagBenchMonitor; return true })()`

/** Starts the monitor's timer in the target. */
export async function startStallMonitor(session: InspectorSession): Promise<void> {
  await session.evaluate(START)
}

/** Stops the monitor's timer and removes it from the target. */
export async function stopStallMonitor(session: InspectorSession): Promise<void> {
  await session.evaluate(STOP)
}

/** The longest event-loop gap in the target while `action` runs, ms. */
export async function stallDuring(session: InspectorSession, action: () => Promise<unknown>): Promise<number> {
  await session.evaluate(RESET)
  await action()
  // Let the monitor's timer fire once after the action, so a stall at its very end is counted.
  await pause(20)
  return session.evaluate<number>(READ)
}

/**
 * Runs `rounds` rounds of `without` and `withProbes`, alternating which goes first so drift in the
 * machine's load favours neither, and measures the longest gap over 500 ms of nothing after each round.
 */
export async function alternateRounds(
  session: InspectorSession,
  rounds: number,
  without: () => Promise<unknown>,
  withProbes: () => Promise<unknown>,
): Promise<number[]> {
  const idle: number[] = []
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      await without()
      await withProbes()
    } else {
      await withProbes()
      await without()
    }
    idle.push(await stallDuring(session, () => pause(500)))
  }
  return idle
}

/** Longest contiguous and total CPU time the CLI's evaluated code (scripts without a URL) ran in the target, ms. */
export interface OwnCpu {
  longestMs: number
  totalMs: number
}

/**
 * CPU-profiles the target (0.5 ms samples) while `action` runs and measures how long the code the CLI
 * evaluates there (it has no script URL, unlike the program's) ran in one piece, and in all. On a busy
 * target the event-loop gap also holds the program's own long chunks (a load generator catching up after
 * any pause); this is the install's or removal's own share. GC is counted for nobody.
 */
export async function ownCpuDuring(session: InspectorSession, action: () => Promise<unknown>): Promise<OwnCpu> {
  const cdp = session.cdp
  await cdp.send('Profiler.enable')
  await cdp.send('Profiler.setSamplingInterval', {interval: 500})
  await cdp.send('Profiler.start')
  let profile
  try {
    await action()
  } finally {
    profile = (await cdp.send('Profiler.stop')).profile
    await cdp.send('Profiler.disable')
  }
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const ours = new Map<number, boolean>()
  const isOurs = (id: number): boolean => {
    const known = ours.get(id)
    if (known !== undefined) return known
    const n = byId.get(id)!
    const up = parent.get(id)
    const result = (n.callFrame.url === '' && n.callFrame.functionName !== '' && n.callFrame.functionName !== '(root)' && n.callFrame.scriptId !== '0') || (up !== undefined && isOurs(up))
    ours.set(id, result)
    return result
  }
  let longestMs = 0
  let totalMs = 0
  let runMs = 0
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  for (let i = 0; i < samples.length; i++) {
    // A sample's time is the gap to the next one.
    const ms = (deltas[i + 1] ?? 0) / 1000
    if (isOurs(samples[i])) {
      runMs += ms
      totalMs += ms
      if (runMs > longestMs) longestMs = runMs
    } else runMs = 0
  }
  return {longestMs, totalMs}
}

/** What measureProbeRounds measured: rates (per phase) and the target's longest event-loop gaps, ms. */
export interface ProbeRounds {
  without: number[]
  withProbes: number[]
  installStall: number[]
  removeStall: number[]
  idleStall: number[]
  /** The install's and removal's own longest synchronous run in the target (ownCpuDuring), ms. */
  installOwn: number[]
  removeOwn: number[]
}

/**
 * The probe benches' side-by-side measurement: starts the stall monitor, lets the target settle for 2 s,
 * then alternates `rounds` phases without and with probes (installed without the zongji lookup and removed
 * again each round, each of the two timed as a stall). `onInstalled` sees each install's status.
 */
export async function measureProbeRounds(
  session: InspectorSession,
  rounds: number,
  phaseRate: () => Promise<number>,
  onInstalled: (status: Awaited<ReturnType<typeof installProbesIn>>) => void,
): Promise<ProbeRounds> {
  const measured: ProbeRounds = {without: [], withProbes: [], installStall: [], removeStall: [], idleStall: [], installOwn: [], removeOwn: []}
  await startStallMonitor(session)
  await pause(2000)
  const measureWithout = async () => measured.without.push(await phaseRate())
  const measureWith = async () => {
    let own: OwnCpu = {longestMs: 0, totalMs: 0}
    const install = async () => onInstalled(await installProbesIn(session, {findInstances: false, budgetMs: 60_000}))
    measured.installStall.push(await stallDuring(session, async () => (own = await ownCpuDuring(session, install))))
    measured.installOwn.push(own.longestMs)
    measured.withProbes.push(await phaseRate())
    measured.removeStall.push(await stallDuring(session, async () => (own = await ownCpuDuring(session, () => removeProbes(session)))))
    measured.removeOwn.push(own.longestMs)
  }
  measured.idleStall.push(...(await alternateRounds(session, rounds, measureWithout, measureWith)))
  return measured
}

/** One step of an install or removal: the target's longest event-loop gap during it, and its CLI wall time, ms. */
export interface StepCost {
  step: string
  stallMs: number
  wallMs: number
  /** Its own longest synchronous run in the target (ownCpuDuring), ms. */
  ownMs: number
}

/**
 * Where an install's and a removal's stall goes: runs the steps installProbesIn takes one by one (a bare
 * CDP round trip, the zongji/mysql2 patch, the queue/stream patch, a queue lookup forced to run), then
 * the removal, each under the stall monitor (which must be running). Leaves no probes installed.
 */
export async function measureInstallSteps(session: InspectorSession): Promise<StepCost[]> {
  const steps: StepCost[] = []
  const step = async (name: string, action: () => Promise<unknown>) => {
    let wallMs = 0
    let own: OwnCpu = {longestMs: 0, totalMs: 0}
    const stallMs = await stallDuring(session, async () => {
      own = await ownCpuDuring(session, async () => {
        const started = performance.now()
        await action()
        wallMs = performance.now() - started
      })
    })
    steps.push({step: name, stallMs, wallMs, ownMs: own.longestMs})
  }
  await step('CDP round trip (evaluate 1)', () => session.evaluate('1'))
  await step('zongji/mysql2 patch (installProbes)', () => session.evaluate(`(${installProbes.toString()})()`, {budgetMs: 60_000, awaitPromise: true}))
  await step('queue/stream patch (installQueueProbes)', () => session.evaluate(`(${installQueueProbes.toString()})()`, {budgetMs: 60_000, awaitPromise: true}))
  await step('queue lookup, forced (Runtime.queryObjects)', () => lookUpQueues(session, 'bench'))
  await step('removal', () => removeProbes(session))
  return steps
}

/**
 * The probe benches' table: rates side by side and their ratio, install/removal/idle stalls per round,
 * `extra` rows (per-round lookups, libraries), then the step breakdown.
 */
export function probeRoundsTable(measured: ProbeRounds, unit: string, phaseMs: number, extra: Array<[string, string]>, steps: StepCost[]): string {
  const {without, withProbes, installStall, removeStall, idleStall} = measured
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  const ms = (xs: number[]) => `${xs.map((x) => x.toFixed(1)).join(', ')} ms (max ${Math.max(...xs).toFixed(1)})`
  const table = new Table({head: ['measure', 'value'], style: {head: [], border: []}})
  table.push([`${unit} without probes (${without.length} × ${phaseMs / 1000} s)`, without.map((x) => Math.round(x)).join(', ')])
  table.push([`${unit} with probes (${withProbes.length} × ${phaseMs / 1000} s)`, withProbes.map((x) => Math.round(x)).join(', ')])
  table.push(['with / without (means)', `${((mean(withProbes) / mean(without)) * 100).toFixed(1)} %`])
  table.push(['install: longest target event-loop gap', ms(installStall)])
  table.push(['  its own longest synchronous run (CPU profile)', ms(measured.installOwn)])
  table.push(['removal: longest target event-loop gap', ms(removeStall)])
  table.push(['  its own longest synchronous run (CPU profile)', ms(measured.removeOwn)])
  table.push(['nothing happening (500 ms): longest gap', ms(idleStall)])
  for (const row of extra) table.push(row)
  for (const s of steps) table.push([`step: ${s.step}`, `gap ${s.stallMs.toFixed(1)} ms, own run ${s.ownMs.toFixed(1)} ms, CLI wall ${s.wallMs.toFixed(1)} ms`])
  return table.toString()
}
