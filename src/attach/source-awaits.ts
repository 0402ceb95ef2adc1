// Reads the scripts of a target's suspended functions from this machine's disk (file:// URLs and
// absolute paths) and scans each once for its functions' awaits (src/analyze/await-sites.ts). Used by
// the heap route for the frames whose live await position could not be read. The file is read as it
// is now: a file changed since the target loaded it can give wrong lines (as it would in a stack trace).

import {readFileSync, statSync} from 'node:fs'

import {scanScript, type AwaitSite, type ScannedScript} from '../analyze/await-sites.js'
import {toLocalPath} from './source-maps.js'

/** Largest script scanned (bytes): a bigger bundle keeps its header lines rather than stall the dump. */
const MAX_SCRIPT_BYTES = 4 * 1024 * 1024

export interface SourceAwaits {
  /**
   * The awaits of the function defined at `definition` (0-based, as the heap snapshot records it) in
   * the script at `url`, or null when the script cannot be read or scanned, or no function starts there.
   */
  awaitsOf(url: string | undefined, definition: {line: number; column: number} | undefined, moduleBody: boolean): AwaitSite[] | null
}

export function createSourceAwaits(): SourceAwaits {
  const scripts = new Map<string, ScannedScript | null>()
  const load = (filePath: string): ScannedScript | null => {
    if (scripts.has(filePath)) return scripts.get(filePath)!
    let scanned: ScannedScript | null = null
    try {
      if (statSync(filePath).size <= MAX_SCRIPT_BYTES) scanned = scanScript(readFileSync(filePath, 'utf8'))
    } catch {
      scanned = null // unreadable, or text the scan cannot follow: no answer rather than a guess
    }
    scripts.set(filePath, scanned)
    return scanned
  }
  return {
    awaitsOf(url, definition, moduleBody) {
      const filePath = url === undefined ? null : toLocalPath(url)
      if (filePath === null || definition === undefined) return null
      return load(filePath)?.awaitsOf(definition.line, definition.column, moduleBody) ?? null
    },
  }
}
