// Queue probes (fastq, async, p-queue; src/agent/queue-probes-core.cts) on a fastq pipeline pushing as fast
// as its 4 workers take: items finished per second with and without the probes, in alternating phases on one
// session, and the stall the install (including the Runtime.queryObjects that finds the queue: a full GC,
// the only way to reach a fastq queue made before install) and the removal cause in the target, as the
// longest gap of a 1 ms interval timer inside it, next to the longest gap over a phase with nothing
// happening; then the install taken apart step by step. Figures only. Run: npm run bench -- queue-probes.
import {createRequire} from 'node:module'

import {attachTarget, type InspectorSession} from '../../src/attach/index.js'
import {spawnTarget} from '../helpers/child-process.js'
import {pause} from '../helpers/pipeline-process.js'
import {measureInstallSteps, measureProbeRounds, probeRoundsTable, type ProbeRounds, type StepCost} from '../helpers/target-stall.js'

const PHASE_MS = 5000
const ROUNDS = 3
const FASTQ = createRequire(import.meta.url).resolve('fastq')

const TARGET = `
const fastq = require(${JSON.stringify(FASTQ)})
globalThis.__done = 0
const q = fastq((item, cb) => { globalThis.__done++; setImmediate(cb, null, item) }, 4)
const feed = () => { for (let i = 0; i < 64 && q.length() < 2000; i++) q.push(i); setImmediate(feed) }
feed()
console.log('ready')
`

async function phaseRate(session: InspectorSession): Promise<number> {
  const read = () => session.evaluate<{n: number; t: number}>(`({n: globalThis.__done, t: performance.now()})`)
  const a = await read()
  await pause(PHASE_MS)
  const b = await read()
  return ((b.n - a.n) * 1000) / (b.t - a.t)
}

async function main(): Promise<void> {
  const target = await spawnTarget({script: TARGET, moduleType: 'cjs', execArgv: ['--inspect=127.0.0.1:0']})
  const session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
  const lookups: string[] = []
  let measured: ProbeRounds
  let steps: StepCost[]
  try {
    measured = await measureProbeRounds(session, ROUNDS, () => phaseRate(session), (status) => {
      lookups.push(`${status.queueLookupMs?.toFixed(0) ?? 'not run'} ms (${status.queuesAdopted} queue)`)
    })
    steps = await measureInstallSteps(session)
  } finally {
    await session.detach()
    await target.kill()
  }
  process.stdout.write(`${probeRoundsTable(measured, 'items/s', PHASE_MS, [['  of which queue lookup (queueLookupMs, CLI wall time)', lookups.join(', ')]], steps)}\n`)
}

await main()
