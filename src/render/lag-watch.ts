// The `lag --watch` screen: one frame per assessed window. On a terminal each frame replaces the last;
// piped, frames follow one another separated by a blank line; with --json, one document per line.

import type {LagAssessment} from '../model/lag-result.js'
import {renderLagJsonLine} from './lag-json.js'
import {renderLagWatch} from './lag-text.js'
import type {ProgressStream} from './progress.js'

/** Clears a terminal and moves the cursor home (ANSI). */
const CLEAR_SCREEN = '\x1b[H\x1b[2J'

export interface LagWatchScreen {
  draw(result: LagAssessment): void
}

export function createLagWatchScreen(options: {json: boolean; stream?: ProgressStream}): LagWatchScreen {
  const stream = options.stream ?? process.stdout
  const tty = stream.isTTY === true && !options.json
  let frames = 0
  return {
    draw(result) {
      frames++
      if (options.json) stream.write(renderLagJsonLine(result))
      else if (tty) stream.write(`${CLEAR_SCREEN}${renderLagWatch(result)}(Ctrl-C to stop)\n`)
      else stream.write(`${frames > 1 ? '\n' : ''}${renderLagWatch(result)}`)
    },
  }
}
