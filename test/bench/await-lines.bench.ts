// `npm run bench -- await-lines`: how heap-route frames get their await line on busy wild programs
// (tasks that finish within milliseconds) and the stuck ones: frames per source (V8's own location,
// a representative's, the function's only await, the await calling the next frame's function,
// candidates, the header), lookups made and their time. Figures are printed, never asserted.

import CDP from 'chrome-remote-interface'
import {collectHeapTasks} from '../../src/attach/heap-tasks.js'
import {killAllTargets} from '../helpers/child-process.js'
import {listWildPrograms, startWildProgram} from '../helpers/wild.js'

const BUSY = ['geocode-two-queues.mjs', 'pqueue-throttled-import.mjs', 'http-ingest-loop.mjs']
const ROUNDS = 2
const programs = listWildPrograms().filter((p) => p.needs === undefined && (BUSY.includes(p.file) || p.truth === 'stuck'))
console.log('program                              round tasks lookups lookupMs  frames by source')
for (const program of programs) {
  for (let round = 1; round <= ROUNDS; round++) {
    const started = await startWildProgram(program)
    const client = await CDP({host: '127.0.0.1', port: started.inspectPort})
    try {
      const result = await collectHeapTasks(client, {observeMs: 0})
      const {lookups, lookupMs, framesBySource} = result.stats
      console.log(
        `${program.file.padEnd(36)} ${String(round).padStart(5)} ${String(result.tasks.length).padStart(5)} ${String(lookups).padStart(7)} ${lookupMs.toFixed(0).padStart(8)}  ${JSON.stringify(framesBySource)}`,
      )
    } finally {
      await client.close()
      await started.stop()
    }
  }
}
killAllTargets()
