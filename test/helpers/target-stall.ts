// Measures how long a target's event loop stalls while the CLI does something to it: a 1 ms interval timer
// inside the target records its longest gap between ticks (for the probe benches).
import type {InspectorSession} from '../../src/attach/index.js'
import {installProbesIn, removeProbes} from '../../src/collect/probe-session.js'
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

/** What measureProbeRounds measured: rates (per phase) and the target's longest event-loop gaps, ms. */
export interface ProbeRounds {
  without: number[]
  withProbes: number[]
  installStall: number[]
  removeStall: number[]
  idleStall: number[]
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
  const measured: ProbeRounds = {without: [], withProbes: [], installStall: [], removeStall: [], idleStall: []}
  await startStallMonitor(session)
  await pause(2000)
  const measureWithout = async () => measured.without.push(await phaseRate())
  const measureWith = async () => {
    measured.installStall.push(await stallDuring(session, async () => onInstalled(await installProbesIn(session, {findInstances: false}))))
    measured.withProbes.push(await phaseRate())
    measured.removeStall.push(await stallDuring(session, () => removeProbes(session)))
  }
  measured.idleStall.push(...(await alternateRounds(session, rounds, measureWithout, measureWith)))
  return measured
}
