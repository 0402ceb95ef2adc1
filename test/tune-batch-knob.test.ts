// tune-batch names the batch-size knob in the pipeline's own terms (issue 11 item 4): read-only, among the
// objects the probes hold (the queues they watch, the zongji instances, what their functions close over).
// Two programs written as people write them, never importing ferrydiag: an `async` cargo of payload 50,
// and a hand-rolled buffer with a `batchSize` of 40 fed by a fastq worker; and the fallback wording when
// no property matches the observed batch size.

import assert from 'node:assert/strict'
import path from 'node:path'
import {describe, it} from 'node:test'
import {attachTarget} from '../src/attach/index.js'
import {findBatchKnob} from '../src/collect/batch-knob.js'
import {installProbesIn, removeProbes} from '../src/collect/probe-session.js'
import {describeKnob} from '../src/render/tune-batch-text.js'
import {spawnTarget} from './helpers/child-process.js'
import {REPO_ROOT} from './helpers/wild.js'

const lib = (name: string) => JSON.stringify(path.join(REPO_ROOT, 'node_modules', name))

const CARGO = `
const async = require(${lib('async')})
const audit = async.cargo((entries, done) => setTimeout(done, 5), 50)
setInterval(() => { for (let i = 0; i < 60; i++) audit.push({at: Date.now(), i}) }, 20)
console.log('ready')
`

const HAND_ROLLED = `
const fastq = require(${lib('fastq')})
class RowBuffer {
  constructor(options) { this.batchSize = options.batchSize; this.rows = []; this.flushed = 0 }
  add(row) { this.rows.push(row); if (this.rows.length >= this.batchSize) { this.rows = []; this.flushed++ } }
}
const buffer = new RowBuffer({batchSize: 40})
const intake = fastq((row, done) => { buffer.add(row); done(null) }, 1)
setInterval(() => { for (let i = 0; i < 30; i++) intake.push({id: i}) }, 20)
console.log('ready')
`

/** Installs the probes in a fresh program, looks for the knob at each of `sizes`, removes the probes. */
async function knobsIn(script: string, sizes: Array<{observed: number; maxRows: number}>) {
  const target = await spawnTarget({script, moduleType: 'cjs', execArgv: ['--inspect=127.0.0.1:0'], startTimeoutMs: 30_000})
  try {
    const session = await attachTarget({inspect: `127.0.0.1:${target.inspectPort}`})
    try {
      const installed = await installProbesIn(session)
      assert.ok(installed.queuesAdopted >= 1, `the queue probes found no queue: ${JSON.stringify(installed.libraries)}`)
      const found = []
      for (const s of sizes) found.push(await findBatchKnob(session, s))
      return found
    } finally {
      await removeProbes(session)
      await session.detach()
    }
  } finally {
    await target.kill()
  }
}

describe('the batch-size knob in the pipeline\'s own terms', () => {
  it('an async cargo: cargo.payload; a size nothing holds: none', async () => {
    const [match, none] = await knobsIn(CARGO, [{observed: 50, maxRows: 50}, {observed: 37, maxRows: 37}])
    assert.deepEqual(match, {path: 'cargo.payload', value: 50})
    assert.equal(none, null)
  })

  it('a hand-rolled buffer reached through the fastq worker\'s closure: buffer.batchSize', async () => {
    const [match] = await knobsIn(HAND_ROLLED, [{observed: 40, maxRows: 40}])
    assert.deepEqual(match, {path: 'buffer.batchSize', value: 40})
  })

  it('words the knob, or falls back to events per batch write', () => {
    assert.equal(
      describeKnob({currentBatchSizeFrom: 'observed', currentBatchSize: 50, knob: {path: 'cargo.payload', value: 50}, recommendedBatchSize: 120}),
      'cargo.payload, now 50 -> recommend 120',
    )
    assert.equal(
      describeKnob({currentBatchSizeFrom: 'observed', currentBatchSize: 37, knob: null, recommendedBatchSize: 120}),
      'events per batch write (now ≈ 37; median of the writes seen)',
    )
  })
})
