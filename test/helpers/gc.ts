// Forces garbage collection from a test without starting node with --expose-gc: the flag is set at run
// time and a fresh context then exposes gc(). Used to show records outliving collected channels.
import {setImmediate as nextTurn} from 'node:timers/promises'
import v8 from 'node:v8'
import vm from 'node:vm'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

/** Runs full GCs with event-loop turns in between, so FinalizationRegistry callbacks get to run. */
export async function collectGarbage(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc()
    await nextTurn()
    await nextTurn()
  }
}
