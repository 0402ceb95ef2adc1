// Named sources, settings and counters a pipeline exposes to ferrydiag through the agent.
import type {SourceStatus} from '../model/snapshot.js'
import {getAgent} from './agent-link.js'

function checkName(name: unknown): void {
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(name)}\` (${typeof name})`)
  }
}

/**
 * Registers the source end of the pipeline. The snapshot calls read() synchronously inside try/catch
 * (so it should return a cached status, not query); a throw becomes SourceStatus.error, with the last
 * good end position kept. Returns a function that unregisters it. A second registration replaces the first.
 */
export function registerSource(
  name: string,
  kind: 'mysql' | 'simulated',
  read: () => Omit<SourceStatus, 'name' | 'kind'>,
): () => void {
  checkName(name)
  if (kind !== 'mysql' && kind !== 'simulated') {
    throw new RangeError(`Expected \`kind\` to be 'mysql' or 'simulated', got \`${String(kind)}\` (${typeof kind})`)
  }
  if (typeof read !== 'function') throw new TypeError(`Expected \`read\` to be a function, got ${typeof read}`)
  return getAgent().registerSource(name, kind, read)
}

/** Exposes a numeric knob; with set, ferrydiag may change it (tune-batch). Returns an unregister function. */
export function registerSetting(name: string, get: () => number, set?: (v: number) => void): () => void {
  checkName(name)
  if (typeof get !== 'function') throw new TypeError(`Expected \`get\` to be a function, got ${typeof get}`)
  if (set !== undefined && typeof set !== 'function') throw new TypeError(`Expected \`set\` to be a function, got ${typeof set}`)
  return getAgent().registerSetting(name, get, set)
}

/** A named, monotonically increasing counter; the same name returns the same underlying value. */
export function counter(name: string): {add(n?: number): void; readonly value: number} {
  checkName(name)
  const cell = getAgent().counter(name)
  return {
    add(n = 1) {
      if (!Number.isFinite(n) || n < 0) {
        throw new RangeError(`Expected \`n\` to be a finite number >= 0, got \`${String(n)}\` (${typeof n})`)
      }
      cell.add(n)
    },
    get value() {
      return cell.value
    },
  }
}
