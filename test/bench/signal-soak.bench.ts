// Many runs of the commands that attach with --pid, each ended by SIGINT, SIGTERM or SIGHUP at a random
// moment (a random delay after a random FERRYDIAG_TRACE phase), counting what the safety test checks in a
// handful of runs: the target crashed (and with which signal), its inspector left open, probes or an undo
// entry or the lease left in it, the batch size not restored. Paths: `lag --pid` and `tune-batch --pid` on a
// wild zongji + mysql2 program (probes installed), `lag --pid` on the reference pipeline (agent, streamed
// snapshots), `tune-batch --perturb`, `stacks --heap`. Figures only, never asserted.
// Run: npm run bench -- signal-soak. FERRYDIAG_SOAK_RUNS=N runs per path (default 20);
// FERRYDIAG_SOAK_PATHS=lag-wild,tune-wild,lag-ref,perturb,heap picks paths; FERRYDIAG_SOAK_PHASES=attached:400,...
// replaces every path's phases (PHASE:max delay ms); FERRYDIAG_SIGNAL_SEED=N repeats.
import {fileURLToPath} from 'node:url'
import Table from 'cli-table3'

import {attachTarget} from '../../src/attach/index.js'
import {AGENT_GLOBAL_KEY} from '../../src/model/snapshot.js'
import {spawnTarget, type TargetProcess} from '../helpers/child-process.js'
import {createRandom} from '../helpers/generate-samples.js'
import {startSourceAndTarget, type SourceAndTarget} from '../helpers/mariadb.js'
import {PIPELINE_MAIN} from '../helpers/pipeline-process.js'
import {PROBE_TRACES_EXPRESSION, type ProbeTraces} from '../helpers/probes.js'
import {inspectorClosed, pickSignal, runAndSignal} from '../helpers/signals.js'
import {listWildPrograms} from '../helpers/wild.js'
import {startWildPipeline, type WildPipeline} from '../helpers/wild-mariadb.js'

const RUNS = Number(process.env.FERRYDIAG_SOAK_RUNS ?? 20)
const SEED = Number(process.env.FERRYDIAG_SIGNAL_SEED ?? Math.floor(Math.random() * 1e9))
const ONLY = process.env.FERRYDIAG_SOAK_PATHS?.split(',')
const PHASES = process.env.FERRYDIAG_SOAK_PHASES?.split(',').map((item): [string, number] => {
  const [phase, maxMs] = item.split(':')
  return [phase!, Number(maxMs ?? 0)]
})
const random = createRandom(SEED)
const UNPREPARED_MAIN = fileURLToPath(new URL('../../../fixtures/unprepared/main.mjs', import.meta.url))
const BATCH_SIZE = 64

interface Running {
  target: TargetProcess
  stop(): Promise<void>
}

interface SoakPath {
  name: string
  start(): Promise<Running>
  args(pid: number): string[]
  phases: Array<[phase: string, maxDelayMs: number]>
  probes: boolean
  batchSize: boolean
}

interface Tally {
  runs: number
  sent: number
  crashes: string[]
  inspectorLeft: number
  leftovers: string[]
  exits: Map<string, number>
  elapsedMs: number[]
}

let servers: SourceAndTarget | undefined
const wild = listWildPrograms().find((p) => p.file === 'cdc-batch-upsert.mjs')!

async function startWild(): Promise<Running> {
  servers ??= await startSourceAndTarget()
  const pipeline: WildPipeline = await startWildPipeline(wild, {servers, inspector: false, startTimeoutMs: 120_000})
  return {target: pipeline.program.target, stop: () => pipeline.stop()}
}

async function startReference(): Promise<Running> {
  const target = await spawnTarget({file: PIPELINE_MAIN, args: ['--simulate', '--scenario=healthy', `--batch-size=${BATCH_SIZE}`], readyLine: /^ferrydiag-pipeline /, startTimeoutMs: 120_000})
  return {target, stop: () => target.kill()}
}

async function startUnprepared(): Promise<Running> {
  const target = await spawnTarget({file: UNPREPARED_MAIN, args: ['--scenario=healthy', '--ballast-mb=40'], readyLine: /^unprepared-pipeline /, startTimeoutMs: 120_000})
  return {target, stop: () => target.kill()}
}

const PATHS: SoakPath[] = [
  {
    name: 'lag-wild',
    start: startWild,
    args: (pid) => ['lag', '--pid', String(pid), '--duration', '3s'],
    phases: [['probes', 2500], ['sigusr1', 300], ['attached', 800], ['remove-probes', 30], ['detach', 120]],
    probes: true,
    batchSize: false,
  },
  {
    name: 'tune-wild',
    start: startWild,
    args: (pid) => ['tune-batch', '--pid', String(pid), '--duration', '3s'],
    phases: [['probes', 2500], ['attached', 800], ['remove-probes', 30], ['detach', 120]],
    probes: true,
    batchSize: false,
  },
  {
    name: 'lag-ref',
    start: startReference,
    args: (pid) => ['lag', '--pid', String(pid), '--duration', '3s'],
    phases: [['attached', 2500], ['sigusr1', 300], ['detach', 120]],
    probes: false,
    batchSize: true,
  },
  {
    name: 'perturb',
    start: startReference,
    args: (pid) => ['tune-batch', '--pid', String(pid), '--perturb', '--duration', '3s'],
    phases: [['perturb', 3000], ['attached', 500], ['detach', 120]],
    probes: false,
    batchSize: true,
  },
  {
    name: 'heap',
    start: startUnprepared,
    args: (pid) => ['stacks', '--pid', String(pid), '--heap', '--yes'],
    phases: [['heap-snapshot', 2500], ['attached', 500], ['detach', 120]],
    probes: false,
    batchSize: false,
  },
]

interface AfterState {
  lease: boolean
  undo: string[]
  batchSize: number | null
  probes: ProbeTraces | null
}

/** What a fresh session (attached with SIGUSR1, closed again) finds in the target. */
async function readAfterState(pid: number, probes: boolean): Promise<AfterState> {
  const session = await attachTarget({pid, lease: false})
  try {
    const base = await session.evaluate<Omit<AfterState, 'probes'>>(
      `({lease: globalThis[Symbol.for('ferrydiag.lease')] !== undefined,
         undo: [...(globalThis[Symbol.for('ferrydiag.undo')]?.keys() ?? [])],
         batchSize: globalThis[Symbol.for(${JSON.stringify(AGENT_GLOBAL_KEY)})]?.snapshot().settings.find((s) => s.name === 'BinlogEventBatchSize')?.value ?? null})`,
    )
    return {...base, probes: probes ? await session.evaluate<ProbeTraces>(PROBE_TRACES_EXPRESSION, {awaitPromise: true}) : null}
  } finally {
    await session.detach()
  }
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if (await condition()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

async function soak(path: SoakPath): Promise<Tally> {
  const tally: Tally = {runs: 0, sent: 0, crashes: [], inspectorLeft: 0, leftovers: [], exits: new Map(), elapsedMs: []}
  let running = await path.start()
  try {
    for (let i = 0; i < RUNS; i++) {
      const pick = pickSignal(random, PHASES ?? path.phases)
      const run = await runAndSignal(path.args(running.target.pid), pick)
      tally.runs++
      if (run.sent) tally.sent++
      tally.elapsedMs.push(run.elapsedMs)
      const exit = String(run.code ?? run.signal)
      tally.exits.set(exit, (tally.exits.get(exit) ?? 0) + 1)
      const pid = running.target.pid
      // The watchdog closes what a CLI left within 5 s: wait that long (plus slack) before counting.
      const closed = await waitFor(async () => !running.target.isAlive() || (await inspectorClosed(pid)), 8000)
      if (!running.target.isAlive()) {
        const how = await running.target.exited
        tally.crashes.push(`run ${i} (${pick.label}, CLI exit ${exit}): target ${how.signal ?? `exit ${how.code}`}; ${running.target.stderrText.trim().split('\n').slice(-3).join(' | ')}`)
        process.stdout.write(`  CRASH ${path.name} run ${i}: ${tally.crashes.at(-1)}\n`)
        await running.stop()
        running = await path.start()
        continue
      }
      if (!closed) tally.inspectorLeft++
      try {
        const state = await readAfterState(pid, path.probes)
        const left: string[] = []
        if (state.lease) left.push('lease')
        if (state.undo.length > 0) left.push(`undo ${state.undo.join(',')}`)
        if (path.batchSize && state.batchSize !== BATCH_SIZE) left.push(`batch size ${state.batchSize}`)
        const p = state.probes
        if (p && (p.marker || p.undoEntry || p.mysql2Patched > 0 || p.zongjiPatched > 0)) left.push(`probes ${JSON.stringify(p)}`)
        if (left.length > 0) tally.leftovers.push(`run ${i} (${pick.label}): ${left.join('; ')}`)
      } catch (error) {
        tally.leftovers.push(`run ${i} (${pick.label}): could not read the state after: ${(error as Error).message}`)
      }
      await waitFor(() => inspectorClosed(pid), 8000)
      process.stdout.write(`  ${path.name} ${i + 1}/${RUNS}: ${pick.label}${run.sent ? '' : ' (not sent: ended first)'} -> exit ${exit}\n`)
    }
  } finally {
    await running.stop()
  }
  return tally
}

process.stdout.write(`signal soak: ${RUNS} run(s) per path, seed ${SEED} (FERRYDIAG_SIGNAL_SEED=${SEED} repeats it)\n`)
const table = new Table({style: {head: [], border: []}, head: ['path', 'runs', 'signals sent', 'target crashes', 'inspector left open', 'left in target', 'CLI exits', 'median run s']})
const details: string[] = []
try {
  for (const path of PATHS.filter((p) => ONLY === undefined || ONLY.includes(p.name))) {
    let tally: Tally
    try {
      tally = await soak(path)
    } catch (error) {
      details.push(`${path.name}: stopped: ${(error as Error).message}`)
      continue
    }
    const sorted = [...tally.elapsedMs].sort((a, b) => a - b)
    table.push([
      path.name,
      tally.runs,
      tally.sent,
      tally.crashes.length,
      tally.inspectorLeft,
      tally.leftovers.length,
      [...tally.exits].map(([code, n]) => `${code}×${n}`).join(' '),
      (sorted[Math.floor(sorted.length / 2)]! / 1000).toFixed(1),
    ])
    details.push(...tally.crashes.map((c) => `${path.name} crash: ${c}`), ...tally.leftovers.map((l) => `${path.name} left: ${l}`))
  }
} finally {
  await servers?.stop()
}
process.stdout.write(`${table.toString()}\n${details.join('\n')}\n`)
