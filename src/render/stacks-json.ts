// JSON form of a stacks dump: the documented, versioned shape in src/model/dump.ts, for scripts and CI.

import type {StacksDump} from '../model/dump.js'

/**
 * Serialises the dump, two-space indented with a trailing newline. Fields appear in the order the
 * model declares them, so two dumps of the same snapshot are byte-identical.
 */
export function renderStacksJson(dump: StacksDump): string {
  return `${JSON.stringify(dump, null, 2)}\n`
}
